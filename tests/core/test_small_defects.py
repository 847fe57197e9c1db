"""Smaller defects, each said in one line or survived: a threshold that cannot be folded, a run without
its config.json, trackers that fail to start or finish, a resume with fewer GPUs visible."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.cli import main
from workbench.core.base.config import TrainConfig
from workbench.core.base.layout import RunError
from workbench.core.data.cola import project_data_dir
from workbench.core.evaluation.threshold import ThresholdError
from workbench.core.training import checkpoint, trackers
from workbench.core.training.train import train


def test_a_threshold_error_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert issubclass(ThresholdError, RunError) and issubclass(ThresholdError, ValueError)
    run = tmp_path / "r"
    run.mkdir()
    TrainConfig().save(run / "config.json")
    from workbench.core.evaluation.calibration import calibrate_run

    with pytest.raises(RunError, match="no saved model to calibrate"):
        calibrate_run(run)


def test_a_run_without_its_config_json_is_one_line_for_neighbours(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(tiny_model_dir, runs / "r" / "model")
    (runs / "r" / "metrics.jsonl").write_text("", encoding="utf-8")
    assert main(["neighbors", "r", "The cat sat.", "--runs", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no config.json beside its model/" in err[0], err


def small_config(model: Path, tmp_path: Path) -> TrainConfig:
    data = tmp_path / "d.tsv"
    lines = (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()[:40]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return TrainConfig(
        model=str(model), data=str(data), epochs=1, batch_size=16, precision="fp32", calibrate_threshold=False
    )


def events_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def test_a_tracker_that_fails_to_start_ends_the_run_with_an_end_event(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def start(*_: Any) -> None:
        raise RuntimeError("wandb: not logged in")

    def finish(*_: Any) -> None:
        raise OSError("tensorboard: disk full")

    monkeypatch.setattr(trackers, "start", start)
    monkeypatch.setattr(trackers, "finish", finish)
    with pytest.raises(RuntimeError, match="not logged in"):  # the original error, not the finish's
        train(small_config(tiny_model_dir, tmp_path), tmp_path / "run")
    last = events_of(tmp_path / "run")[-1]
    assert last["kind"] == "end" and last["status"] == "failed" and "not logged in" in last["error"]


def test_a_tracker_that_fails_to_finish_is_a_warning(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def finish(*_: Any) -> None:
        raise OSError("tensorboard: disk full")

    monkeypatch.setattr(trackers, "finish", finish)
    said: list[dict[str, Any]] = []
    result = train(small_config(tiny_model_dir, tmp_path), tmp_path / "run", on_event=said.append)
    assert result.status == "done"
    assert any(
        "failed to finish" in str(e.get("message", "")) and "disk full" in str(e.get("message", "")) for e in said
    )
    assert events_of(tmp_path / "run")[-1]["kind"] == "end"  # the metrics file was closed whole


def test_resuming_with_fewer_gpus_visible_restores_those_there(monkeypatch: pytest.MonkeyPatch) -> None:
    restored: list[int] = []

    def set_state(state: Any, device: int | str = "cuda") -> None:
        restored.append(int(device))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_state)
    saved = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "cuda": [torch.ByteTensor(16), torch.ByteTensor(16)],
    }  # saved on 2 GPUs
    checkpoint.set_rng_state(saved)
    assert restored == [0]
