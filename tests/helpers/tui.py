"""Helpers for the TUI tests: a deterministic finished run and a failed one, a fixed system monitor, polling."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from workbench.core.base.config import TrainConfig, project_data_dir

DEMO_RUN = "demo-run"


def small_cola_file(folder: Path, rows: int = 240) -> Path:
    """The first ROWS sentences of the bundled training set, as a CoLA TSV."""
    lines = (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()[:rows]
    path = folder / "small_cola.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def demo_run(runs_dir: Path, model_dir: Path) -> Path:
    """A finished run with a fixed history (no clock, no randomness) and the tiny model as its best model."""
    run = runs_dir / DEMO_RUN
    run.mkdir(parents=True)
    TrainConfig(epochs=3, batch_size=32, train_limit=320).save(run / "config.json")
    events: list[dict[str, object]] = [
        {
            "kind": "start",
            "time": "2024-01-01T00:00:00",
            "device": "cpu (2 threads)",
            "precision": "no",
            "train_sentences": 320,
            "steps_per_epoch": 10,
            "total_steps": 30,
            "epochs": 3,
            "resumed_at_step": None,
        }
    ]
    step = 0
    for epoch in range(1, 4):
        for epoch_step in range(1, 11):
            step += 1
            loss = 0.7 - 0.012 * step + 0.03 * ((step * 7) % 5 - 2) / 2
            lr = 1e-4 * min(step / 3, (30 - step) / 27)
            events.append(
                {
                    "kind": "step",
                    "epoch": epoch,
                    "step": step,
                    "epoch_step": epoch_step,
                    "steps_per_epoch": 10,
                    "total_steps": 30,
                    "loss": loss,
                    "lr": lr,
                    "sentences_per_s": 100.0,
                    "elapsed_s": step * 0.5,
                    "eta_s": (30 - step) * 0.5,
                }
            )
        events.append(
            {
                "kind": "epoch",
                "epoch": epoch,
                "step": step,
                "train_loss": 0.7 - 0.1 * epoch,
                "val_loss": 0.65 - 0.05 * epoch,
                "val_accuracy": 0.6 + 0.05 * epoch,
                "val_mcc": 0.1 * epoch,
                "best": True,
                "elapsed_s": step * 0.5,
            }
        )
    events.append({"kind": "end", "status": "done", "step": 30, "epoch": 3, "best_epoch": 3, "best_val_mcc": 0.3})
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    shutil.copytree(model_dir, run / "model")
    return run


FAILED_REASON = (
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.90 GiB total capacity; 13.20 GiB "
    "already allocated); reduce batch_size or max_length"
)


def failed_run(runs_dir: Path, name: str, started: str = "2024-01-02T00:00:00") -> Path:
    """A run that failed in its first epoch with a long error (the demo run's config and first steps)."""
    run = runs_dir / name
    run.mkdir(parents=True)
    TrainConfig(epochs=3, batch_size=32, train_limit=320).save(run / "config.json")
    events: list[dict[str, object]] = [
        {
            "kind": "start",
            "time": started,
            "device": "cpu (2 threads)",
            "precision": "no",
            "train_sentences": 320,
            "steps_per_epoch": 10,
            "total_steps": 30,
            "epochs": 3,
            "resumed_at_step": None,
        }
    ]
    for step in range(1, 6):
        events.append(
            {
                "kind": "step",
                "epoch": 1,
                "step": step,
                "epoch_step": step,
                "steps_per_epoch": 10,
                "total_steps": 30,
                "loss": 0.7 - 0.01 * step,
                "lr": 1e-5 * step,
                "grad_norm": 2.0 / step,
                "sentences_per_s": 100.0,
                "elapsed_s": step * 0.5,
                "eta_s": (30 - step) * 0.5,
            }
        )
    events.append({"kind": "end", "status": "failed", "error": FAILED_REASON, "step": 5, "epoch": 0})
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return run


class FixedMonitor:
    """A system monitor that always reads the same (snapshots must not show this machine's load)."""

    def sample(self) -> object:
        from workbench.core.base.system import SystemSample

        return SystemSample(cpu_percent=25.0, ram_used=4 * 2**30, ram_total=16 * 2**30)


async def wait_until(
    pilot: Pilot[object], condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Let the app run until CONDITION holds (workers finish, messages arrive)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
