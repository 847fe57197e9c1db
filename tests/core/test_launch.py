"""How a training process is started: one process, or one per GPU under Accelerate's launcher."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.core.runs.status import training_command, visible_gpus


def test_one_process_runs_the_cli_and_several_run_under_accelerates_launcher() -> None:
    assert training_command(["train", "--name", "x"]) == [sys.executable, "-m", "workbench.cli", "train", "--name", "x"]
    several = training_command(["train", "--name", "x"], processes=4)
    assert several[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert several[several.index("--num_processes") + 1] == "4" and "--multi_gpu" in several
    assert several[-5:] == ["-m", "workbench.cli", "train", "--name", "x"]
    # the launcher module is there and takes these options (its own parser, not ours)
    shown = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--help"], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0 and "--num_processes" in shown.stdout and "--multi_gpu" in shown.stdout


@pytest.mark.parametrize(("chosen", "count"), [("0,1", 2), ("", 0), ("-1", 0), ("3", 1), ("GPU-abc,GPU-def,2", 3)])
def test_the_gpus_a_training_would_see_follow_cuda_visible_devices(
    monkeypatch: pytest.MonkeyPatch, chosen: str, count: int
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", chosen)
    assert visible_gpus() == count
