"""Runs in tests: the session's trained runs (conftest) and their copies, and comparing a run with the
one it must equal (a resumed run with an uninterrupted one)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workbench.core.runs.metrics import read_metrics


def outcome(run: Path) -> tuple[dict[int, float], dict[int, dict[str, float]], dict[str, Any]]:
    """Loss per step, metrics per epoch (the last record of each: a resume may repeat some), the last event."""
    events = read_metrics(run)
    losses = {e["step"]: e["loss"] for e in events if e["kind"] == "step"}
    epochs = {e["epoch"]: {k: e[k] for k in ("train_loss", "val_loss", "val_accuracy", "val_mcc")}
              for e in events if e["kind"] == "epoch"}
    return losses, epochs, events[-1]


def assert_same_outcome(run: Path, reference: Path, steps: int = 8, abs_tol: float = 1e-5) -> None:
    losses, epochs, end = outcome(run)
    ref_losses, ref_epochs, ref_end = outcome(reference)
    assert sorted(losses) == sorted(ref_losses) == list(range(1, steps + 1))
    assert [losses[s] for s in sorted(losses)] == pytest.approx([ref_losses[s] for s in sorted(losses)],
                                                                abs=abs_tol)
    assert sorted(epochs) == sorted(ref_epochs) == [1, 2]
    for number in (1, 2):
        assert epochs[number] == pytest.approx(ref_epochs[number], abs=abs_tol)
    assert end["status"] == ref_end["status"] == "done"
    assert end["holdout_mcc"] == pytest.approx(ref_end["holdout_mcc"], abs=abs_tol)


def copy_run(run: Path, runs_dir: Path, name: str | None = None) -> Path:
    """A copy of the shared RUN in RUNS_DIR (under its own name or NAME), the test's to change."""
    target = runs_dir / (name or run.name)
    shutil.copytree(run, target)
    return target


@dataclass
class TrainedRun:
    """A run trained once per session by train(): its folder (copy it before changing anything),
    the events its callback saw, and the result's status, epochs and final scores."""

    path: Path
    events: list[dict[str, Any]]
    status: str
    epochs_done: int
    final: dict[str, Any]
