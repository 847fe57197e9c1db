"""The loss read from an accelerator every few steps (read_interval), and a stop carried by the step's agreement.

A CPU reads every step; these tests make the CPU read as an accelerator does (every few steps) and check
that nothing a user sees changes: every step's loss and learning rate, the checkpoints, and a non-finite
gradient stopping the run by its step number with no weight ever non-finite."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import faults

from workbench.core.base.config import TrainConfig
from workbench.core.training.train import train


def steps_of(events: list[dict[str, Any]]) -> list[tuple[int, float, float, float | None]]:
    return [(e["step"], e["loss"], e["lr"], e["grad_norm"]) for e in events if e["kind"] == "step"]


def test_reading_every_few_steps_records_every_step_as_reading_each_does(
    tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_config.checkpoint_every = 5  # 6 steps an epoch: checkpoints at 5 and 10 fall between reads
    each: list[dict[str, Any]] = []
    assert train(tiny_config, tmp_path / "each", on_event=each.append).status == "done"

    import workbench.core.training.loop as train_module

    reads: list[int] = []
    real_read = train_module.read_steps

    def counted(pending: list[Any]) -> Any:
        reads.append(len(pending))
        return real_read(pending)

    monkeypatch.setattr(train_module, "read_interval", lambda device_type: 4)
    monkeypatch.setattr(train_module, "read_steps", counted)
    late: list[dict[str, Any]] = []
    assert train(tiny_config, tmp_path / "late", on_event=late.append).status == "done"

    assert steps_of(late) == steps_of(each)  # every step, in order, the same numbers
    assert [s for s, *_ in steps_of(late)] == list(range(1, 13))
    assert reads == [4, 1, 1, 4, 2]  # steps 1-4, 5 (checkpoint), 6 (epoch end), 7-10, 11-12
    checkpoints = [e["step"] for e in late if e["kind"] == "checkpoint"]
    assert checkpoints == [e["step"] for e in each if e["kind"] == "checkpoint"]
    assert 5 in checkpoints and 10 in checkpoints
    epochs = [(e["train_loss"], e["val_mcc"]) for e in late if e["kind"] == "epoch"]
    assert epochs == [(e["train_loss"], e["val_mcc"]) for e in each if e["kind"] == "epoch"]


def test_a_non_finite_gradient_read_late_stops_the_run_naming_its_step(
    tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import workbench.core.training.loop as train_module

    trained: list[Any] = []
    bad = faults.infinite_gradient_at(3)

    def keep(model: Any) -> None:
        trained.append(model)
        bad(model)

    monkeypatch.setattr("workbench.core.model.loading.load_model", faults.on_training_model(keep))
    monkeypatch.setattr(train_module, "read_interval", lambda device_type: 4)
    events: list[dict[str, Any]] = []
    result = train(tiny_config, tmp_path / "run", on_event=events.append)
    assert result.status == "failed", result
    assert re.search(r"gradient norm became (inf|nan) at step 3;", result.error), result.error
    assert "1 step(s) later" in result.error, result.error  # step 4 ran before the read
    assert [s for s, *_ in steps_of(events)] == [1, 2]  # the bad step and after are not recorded
    assert all(math.isfinite(loss) for _, loss, *_ in steps_of(events))
    assert all(torch.isfinite(p).all() for p in trained[0].parameters())  # skipped on the device


def test_read_steps_reads_losses_and_norms_in_order() -> None:
    import torch

    from workbench.core.training.step import PendingStep, read_steps

    pending = [
        PendingStep(16, torch.tensor(0.5), torch.tensor(2.0), None, 0.0, 1e-3),
        PendingStep(16, torch.tensor(0.7), None, None, 0.0, 1e-3),
        PendingStep(16, torch.tensor(9.9), torch.tensor(float("inf")), 0.25, 0.0, 1e-3),
    ]
    read = read_steps(pending)
    assert read[0] == (0.5, 2.0)
    assert read[1][0] == pytest.approx(0.7) and read[1][1] is None
    assert read[2] == (0.25, math.inf)  # several processes: their agreed mean loss, already read
    assert read_steps([]) == []
