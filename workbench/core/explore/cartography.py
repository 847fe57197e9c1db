"""A map of the training data (dataset cartography, Swayamdipta et al. 2020): each training sentence's
confidence (mean p(gold) over epochs), variability (its standard deviation) and correctness (the share of
epochs in which p(gold) > 0.5), from what training recorded (core/runs/dynamics.py).

Regions, by the paper's picture (its Figure 1) made a rule: the most variable third of the sentences
(variability at or above its 2/3 quantile, and above 0) is *ambiguous*; of the rest, those the model
mostly gave the wrong label (confidence < 0.5) are *hard-to-learn* and the others *easy-to-learn*.
Hard-to-learn is where label errors gather (the paper's Section 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.base.layout import RunError

# the coordinates and the regions' rule live with the recorded dynamics, so that a training can choose its
# sentences by another run's map (core/training/selection.py); the names stay importable from here
from workbench.core.runs.dynamics import AMBIGUOUS_QUANTILE as AMBIGUOUS_QUANTILE
from workbench.core.runs.dynamics import HARD_CONFIDENCE as HARD_CONFIDENCE
from workbench.core.runs.dynamics import REGIONS, TrainingDynamics, coordinates, read_dynamics, regions

# why a sentence has no coordinates: a stopped run's last epoch had not reached its batch
NOT_RECORDED = "not recorded: training stopped before this sentence's first batch"


@dataclass
class TrainingMap:
    """The map: `table` has one row per training sentence (row, line, sentence, label, confidence, variability,
    correctness, epochs, region; `line` is its line in the data file, as label overrides name it); `dynamics`
    the recorded p(gold) per epoch."""

    run_dir: Path
    table: pd.DataFrame
    dynamics: TrainingDynamics = field(repr=False)

    @property
    def epochs(self) -> int:
        return self.dynamics.epochs_recorded

    def epochs_text(self) -> str:
        return f"{self.epochs} epoch{'' if self.epochs == 1 else 's'} recorded"

    def caveat(self) -> str:
        """What the map cannot say yet ("" when nothing): with one epoch no sentence has varied."""
        if self.epochs == 1:
            return "one epoch: nothing varied yet, so none is ambiguous"
        return ""

    def region(self, name: str) -> pd.DataFrame:
        if name not in REGIONS:
            raise ValueError(f"region: one of {', '.join(REGIONS)}")
        return self.table[self.table["region"] == name]

    def trajectory(self, row: int) -> list[float | None]:
        """Training row ROW's p(gold) in each recorded epoch (None where that epoch did not record it)."""
        values = self.dynamics.p_gold[: self.epochs, row]
        return [None if np.isnan(v) else float(v) for v in values]

    def counts(self) -> dict[str, int]:
        return {name: int((self.table["region"] == name).sum()) for name in REGIONS}

    @property
    def not_recorded(self) -> int:
        """Sentences with no p(gold) in any epoch (a run stopped in its first epoch)."""
        return int((self.table["epochs"] == 0).sum())

    def to_records(self, frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
        """One JSON-ready record per row of FRAME (default: all): a sentence never recorded has null
        coordinates and region, `recorded` false and `why`; never NaN, which strict JSON has no word for."""
        frame = self.table if frame is None else frame
        records = []
        for r in frame.itertuples():
            recorded = int(r.epochs) > 0
            records.append(
                {
                    "row": int(r.row),
                    "line": int(r.line),
                    "sentence": r.sentence,
                    "label": int(r.label),
                    "recorded": recorded,
                    **({} if recorded else {"why": NOT_RECORDED}),
                    "confidence": float(r.confidence) if recorded else None,
                    "variability": float(r.variability) if recorded else None,
                    "correctness": float(r.correctness) if recorded else None,
                    "epochs": int(r.epochs),
                    "region": r.region if recorded else None,
                    "p_gold": self.trajectory(int(r.row)),
                }
            )
        return records


def training_sentences(run_dir: Path) -> pd.DataFrame:
    """The sentences RUN_DIR trained on, in training-row order, with the labels it trained with (its recorded
    rows: overrides and a map subset applied; core/runs/train_rows.py)."""
    from workbench.core.runs.train_rows import run_training_frame

    return run_training_frame(run_dir)


def training_map(run_dir: Path) -> TrainingMap:
    """RUN_DIR's map. RunError when it has none (a run trained before maps were recorded) or when the
    run's data no longer has the sentences it was recorded on."""
    dynamics = read_dynamics(run_dir)
    frame = training_sentences(run_dir)
    labels = frame["label"].to_numpy()
    if len(labels) != len(dynamics.labels) or not (labels == dynamics.labels).all():
        raise RunError(
            f"{run_dir / 'training_dynamics.npz'}: recorded on {len(dynamics.labels)} training sentences "
            f"that the run's data no longer gives ({len(labels)} sentences now, or other labels)"
        )
    confidence, variability, correctness, epochs = coordinates(dynamics.p_gold)
    table = pd.DataFrame(
        {
            "row": np.arange(len(frame)),
            "line": frame["line"].to_numpy(),
            "sentence": frame["sentence"].astype(str).to_numpy(),
            "label": labels,
            "source": frame["source"].astype(str).to_numpy(),
            "confidence": confidence,
            "variability": variability,
            "correctness": correctness,
            "epochs": epochs,
            "region": regions(confidence, variability),
        }
    )
    return TrainingMap(run_dir, table, dynamics)
