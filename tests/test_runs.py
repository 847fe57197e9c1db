"""Runs that outlive the terminal (detach, attach, stop), comparing and exporting runs, and DDP."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.base.layout import PID_FILE
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import read_metrics
from workbench.core.runs.status import run_info

WORKBENCH = [sys.executable, "-m", "workbench.cli"]


def tiny_args(model: Path, runs: Path, name: str, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--runs", str(runs), "--name", name, "--epochs", "2",
            "--batch-size", "16", "--precision", "fp32", "--learning-rate", "1e-3", *extra]


def wait_for(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def steps(run: Path) -> int:
    return sum(1 for e in read_metrics(run) if e["kind"] == "step")


def test_detached_run_is_followed_stopped_resumed(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    started = subprocess.run([*WORKBENCH, *tiny_args(tiny_model_dir, runs, "bg", "--train-limit", "1600",
                                                     "--detach")],
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    assert "workbench attach bg" in started.stdout
    run = runs / "bg"
    assert RunLock.is_locked(run)  # the training process holds the run, though the launcher has exited
    wait_for(lambda: steps(run) >= 3)
    assert run_info(run).status == "running"

    follower = subprocess.Popen([*WORKBENCH, "attach", "bg", "--runs", str(runs)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    assert main(["stop", "bg", "--runs", str(runs)]) == 0
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0 and "stopped" in out, out + err
    assert "1600 sentences, 2 epochs" in err  # the history replayed through the progress display
    wait_for(lambda: not RunLock.is_locked(run))
    assert run_info(run).status == "stopped"
    assert (run / "checkpoint" / "meta.json").is_file()

    assert main(["train", "--resume", "bg", "--runs", str(runs), "--detach"]) == 0
    attach = subprocess.run([*WORKBENCH, "attach", "bg", "--runs", str(runs)], capture_output=True, text=True,
                            timeout=300)
    assert attach.returncode == 0 and "done" in attach.stdout, attach.stdout + attach.stderr
    info = run_info(run)
    assert info.status == "done" and info.holdout_mcc is not None and info.epochs_done == 2


def test_a_killed_run_shows_as_failed(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert main(tiny_args(tiny_model_dir, runs, "doomed", "--train-limit", "1600", "--detach")) == 0
    run = runs / "doomed"
    wait_for(lambda: steps(run) >= 2)
    os.kill(int((run / PID_FILE).read_text()), signal.SIGKILL)
    wait_for(lambda: not RunLock.is_locked(run))
    info = run_info(run)
    assert info.status == "failed" and "without a final event" in info.error
    out = subprocess.run([*WORKBENCH, "runs", "--runs", str(runs)], capture_output=True, text=True).stdout
    assert "failed" in out


def test_compare_and_export(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(tiny_args(tiny_model_dir, runs, "a", "--train-limit", "64")) == 0
    assert main(tiny_args(tiny_model_dir, runs, "b", "--train-limit", "64", "--seed", "7")) == 0
    capsys.readouterr()
    assert main(["compare", "a", "b", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert "seed" in rows and "learning_rate" not in rows  # only the differing settings
    assert "val MCC epoch 2" in out

    assert main(["export", "a", "--runs", str(runs)]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sum(r["kind"] == "step" for r in table) == 2 * 4
    assert sum(r["kind"] == "epoch" for r in table) == 2
    assert all(r["loss"] for r in table if r["kind"] == "step")


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun not installed")
def test_two_processes_with_torch_ddp(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    args = tiny_args(tiny_model_dir, runs, "ddp", "--train-limit", "256")
    result = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "workbench.cli", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run = runs / "ddp"
    events = read_metrics(run)
    assert [e["kind"] for e in events].count("start") == 1  # only the main process writes
    assert events[0]["processes"] == 2
    assert events[0]["steps_per_epoch"] == 256 // 16 // 2  # each process sees its half of each epoch
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert [e["val_n"] for e in epochs] == [856, 856]  # validation over the whole set
    assert events[-1]["kind"] == "end" and events[-1]["status"] == "done"
    for part in ("config.json", "model/model.safetensors", "checkpoint/meta.json", "eval.json"):
        assert (run / part).is_file(), part
    assert result.stdout.count("holdout (out_of_domain_dev) MCC") == 1

    # the same effective batch (2 x 16) in one process reaches the same quality
    assert main(tiny_args(tiny_model_dir, runs, "single", "--train-limit", "256", "--batch-size", "32")) == 0
    single = [e for e in read_metrics(runs / "single") if e["kind"] == "epoch"]
    assert epochs[-1]["val_loss"] == pytest.approx(single[-1]["val_loss"], abs=0.03)
    assert json.loads((run / "eval.json").read_text())["holdout"]["n"] == 516


def test_asking_whether_a_run_is_locked_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-run"
    assert RunLock.is_locked(missing) is False
    assert not missing.exists()
    quiet = tmp_path / "finished"
    quiet.mkdir()
    assert RunLock.is_locked(quiet) is False
    assert list(quiet.iterdir()) == []  # no lock file left behind by the question
    with RunLock(quiet):
        assert RunLock.is_locked(quiet) is True
    assert RunLock.is_locked(quiet) is False
