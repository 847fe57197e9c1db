"""Training dynamics: each training sentence's p(gold label) once per epoch, kept in the run folder as
`training_dynamics.npz` (what core/explore/cartography.py maps).

The file holds `p_gold`, a float32 array epochs x training rows (NaN where not recorded), and `label`, the
gold label of each row (to check the map is read against the data the run trained on). It is keyed by
(epoch, row): a resumed epoch that sees a batch again overwrites that batch's values instead of adding
to them, so nothing is recorded twice. It is written atomically at every checkpoint (its values then
cover at least what the checkpoint covers) and at the end of every epoch."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.core.base.config import MAP_REGIONS
from workbench.core.base.durable import write_bytes_atomic
from workbench.core.base.layout import RunError

DYNAMICS_FILE = "training_dynamics.npz"
# The map's regions (core/explore/cartography.py describes the rule)
REGIONS = MAP_REGIONS  # easy, ambiguous, hard
AMBIGUOUS_QUANTILE = 2 / 3  # variability at or above it: ambiguous
HARD_CONFIDENCE = 0.5  # below it (and not ambiguous): hard-to-learn


def coordinates(p_gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confidence, variability (population std), correctness and epochs recorded of each column of
    P_GOLD (epochs x rows; NaN: not recorded)."""
    recorded = ~np.isnan(p_gold)
    epochs = recorded.sum(axis=0)
    safe = np.where(recorded, p_gold, 0.0).astype(np.float64)
    count = np.maximum(epochs, 1)
    confidence = safe.sum(axis=0) / count
    variability = np.sqrt((np.where(recorded, (safe - confidence) ** 2, 0.0)).sum(axis=0) / count)
    correctness = (recorded & (safe > 0.5)).sum(axis=0) / count
    missing = epochs == 0
    return (
        np.where(missing, np.nan, confidence),
        np.where(missing, np.nan, variability),
        np.where(missing, np.nan, correctness),
        epochs,
    )


def regions(confidence: np.ndarray, variability: np.ndarray) -> np.ndarray:
    """easy / ambiguous / hard per sentence (the rule in core/explore/cartography.py's docstring); '' where
    nothing was recorded."""
    known = ~np.isnan(confidence)
    out = np.full(len(confidence), "", dtype=object)
    if not known.any():
        return out
    cut = np.quantile(variability[known], AMBIGUOUS_QUANTILE)
    # a sentence that never varied is not ambiguous, though "at or above the quantile" would take it when most
    # sentences did not vary (a 1-epoch run: every variability 0, and so every sentence was "ambiguous")
    ambiguous = known & (variability >= cut) & (variability > 0)
    out[known & ~ambiguous & (confidence < HARD_CONFIDENCE)] = "hard"
    out[known & ~ambiguous & (confidence >= HARD_CONFIDENCE)] = "easy"
    out[ambiguous] = "ambiguous"
    return out


@dataclass
class TrainingDynamics:
    """p(gold) per epoch and training row (NaN: not recorded), and the rows' gold labels."""

    p_gold: np.ndarray = field(repr=False)  # epochs x rows, float32
    labels: np.ndarray = field(repr=False)  # rows, int8

    @classmethod
    def empty(cls, epochs: int, labels: list[int] | np.ndarray) -> TrainingDynamics:
        labels = np.asarray(labels, dtype=np.int8)
        return cls(np.full((epochs, len(labels)), np.nan, dtype=np.float32), labels)

    @property
    def epochs_recorded(self) -> int:
        """Epochs with at least one value."""
        return int((~np.isnan(self.p_gold)).any(axis=1).sum())

    def record(self, epoch: int, rows: np.ndarray, p_gold: np.ndarray) -> None:
        """Set epoch EPOCH's (0-based) values of ROWS; grows the epochs when EPOCH is past the end."""
        if epoch >= self.p_gold.shape[0]:
            grown = np.full((epoch + 1, self.p_gold.shape[1]), np.nan, dtype=np.float32)
            grown[: self.p_gold.shape[0]] = self.p_gold
            self.p_gold = grown
        self.p_gold[epoch, np.asarray(rows, dtype=np.int64)] = np.asarray(p_gold, dtype=np.float32)

    def save(self, run_dir: Path) -> Path:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, p_gold=self.p_gold, label=self.labels)
        target = run_dir / DYNAMICS_FILE
        write_bytes_atomic(target, buffer.getvalue())
        return target


def dynamics_path(run_dir: Path) -> Path:
    return run_dir / DYNAMICS_FILE


def read_dynamics(run_dir: Path) -> TrainingDynamics:
    """RUN_DIR's recorded training dynamics. RunError (one line, naming the file) when there is none, as
    for a run trained before maps were recorded, or when it cannot be read."""
    path = dynamics_path(run_dir)
    if not path.is_file():
        raise RunError(
            f"{path}: no training map recorded (the run was trained before maps were recorded, "
            "or stopped before its first checkpoint); train a new run to get one"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            p_gold, labels = data["p_gold"].astype(np.float32), data["label"].astype(np.int8)
    except (OSError, ValueError, KeyError) as err:
        raise RunError(f"{path}: cannot read the training map ({err})") from None
    if p_gold.ndim != 2 or labels.ndim != 1 or p_gold.shape[1] != len(labels):
        raise RunError(f"{path}: not a training map (p_gold {p_gold.shape}, label {labels.shape})")
    return TrainingDynamics(p_gold, labels)


def load_or_start(run_dir: Path, epochs: int, labels: list[int]) -> TrainingDynamics:
    """The run's map so far when its labels match LABELS (a resume), else an empty one."""
    try:
        dynamics = read_dynamics(run_dir)
    except RunError:
        return TrainingDynamics.empty(epochs, labels)
    if len(dynamics.labels) != len(labels) or not (dynamics.labels == np.asarray(labels)).all():
        return TrainingDynamics.empty(epochs, labels)
    return dynamics
