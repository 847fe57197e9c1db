"""Where a training is (`Position`, kept in every checkpoint's meta.json) and what `train()` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.events import EpochEvent


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # done, stopped, failed
    epochs_done: int
    best_epoch: int
    best_val_mcc: float
    error: str = ""
    history: list[EpochEvent] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    step: int = 0  # optimizer steps done
    epoch_step: int = 0  # of them, in the epoch not yet done (a run stopped mid-epoch)

    def stopped_at(self) -> str:
        """Where a stopped run stopped, in words: 'step 430, in epoch 3 (2 done)' or 'after epoch 2'."""
        if self.epoch_step:
            return f"step {self.step}, in epoch {self.epochs_done + 1} ({self.epochs_done} done)"
        return f"step {self.step}, after epoch {self.epochs_done}"


@dataclass
class Position:
    """Where a training is; every checkpoint's meta.json holds it, so a resume starts here."""

    epoch: int = 0  # epochs completed
    epoch_step: int = 0  # optimizer steps done in the current epoch
    step: int = 0
    best_val_mcc: float = -2.0
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the best, for --patience
    loss_sum: float = 0.0  # over the current epoch
    loss_count: int = 0
    history: list[EpochEvent] = field(default_factory=list)
    finished: bool = False  # trained: only the finish (calibration, final evaluation) is left
    calibrated: bool = False  # the decision threshold is folded into model/ (not to be folded twice)
    calibration: dict[str, Any] = field(default_factory=dict)  # its entries for the end event
    evaluated: bool = False  # the final evaluation is written: nothing is left to resume
    train_seconds: float = 0.0  # training time up to this checkpoint, over every session (resumes included)
    validation_sentences: int = 0  # (for the finish's progress)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Position:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in meta.items() if k in known})

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    def result(self, run_dir: Path, status: str, error: str = "", final: dict[str, Any] | None = None) -> TrainResult:
        """What `train()` returns for a run that ended here with STATUS."""
        return TrainResult(
            run_dir=run_dir,
            status=status,
            epochs_done=self.epoch,
            best_epoch=self.best_epoch,
            best_val_mcc=self.best_val_mcc,
            error=error,
            history=list(self.history),
            final=final or {},
            step=self.step,
            epoch_step=self.epoch_step,
        )
