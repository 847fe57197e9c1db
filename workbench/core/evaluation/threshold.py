"""The decision threshold: chosen on validation for the best MCC, then folded into the classifier's bias.

A 2-label classifier says "acceptable" when p(acceptable) >= 0.5, i.e. when the logit
difference d = z_acceptable - z_unacceptable >= 0. Saying it when p >= t instead is
d >= logit(t), so subtracting logit(t) from the acceptable logit's bias makes the saved
model's argmax the calibrated decision: `pipeline()`, `workbench predict`, the TUI and
`eval` then all give the same labels from the folder, with no code of ours.

The folded model's probabilities are shifted the same way: p' = sigmoid(d - logit(t)),
so the original is p = sigmoid(logit(p') + logit(t)) (`original_probability`), and the
original's 0.5 decision is p' >= 1 - t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.core.base.config import LABELS

ACCEPTABLE = LABELS.index("acceptable")


UNACCEPTABLE = LABELS.index("unacceptable")


# thresholds stay inside (0, 1) so that their logit is finite
EDGE = 1e-6


class ThresholdError(ValueError):
    """A threshold that cannot be chosen or folded (no data, no bias to fold into)."""


@dataclass
class ThresholdChoice:
    """The threshold on p(acceptable) with the best MCC on the data it was chosen on."""

    threshold: float
    mcc_at_threshold: float
    mcc_at_half: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ThresholdReport:
    """MCC of a saved model at its calibrated threshold (its argmax) and at the original 0.5."""

    threshold: float
    mcc: float
    mcc_at_half: float


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def mcc_at_thresholds(p_acceptable: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """MCC of `p_acceptable >= t` for every t in THRESHOLDS (0 where undefined, as sklearn)."""
    order = np.argsort(p_acceptable, kind="stable")
    sorted_p = p_acceptable[order]
    positive = (labels[order] == ACCEPTABLE).astype(np.float64)
    below_pos = np.concatenate([[0.0], np.cumsum(positive)])  # positives among the first i
    below_neg = np.arange(len(sorted_p) + 1, dtype=np.float64) - below_pos
    cut = np.searchsorted(sorted_p, thresholds, side="left")  # everything from `cut` on is >= t
    fn, tn = below_pos[cut], below_neg[cut]
    tp, fp = below_pos[-1] - fn, below_neg[-1] - tn
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = np.where(denominator > 0, (tp * tn - fp * fn) / np.where(denominator > 0, denominator, 1.0), 0.0)
    return mcc


def _mcc(labels: np.ndarray, predicted: np.ndarray) -> float:
    import warnings

    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class predicted: MCC 0
        return float(matthews_corrcoef(labels, predicted))


def choose_threshold(p_acceptable: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> ThresholdChoice:
    """The threshold on p(acceptable) that maximises MCC on these (validation) data.

    Candidates are 0.5 and the midpoints between consecutive distinct probabilities (every
    distinct labelling); among equal MCCs the one nearest 0.5 wins, so a model already best
    at 0.5 keeps exactly 0.5."""
    p = np.asarray(p_acceptable, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if p.shape != y.shape or p.ndim != 1 or len(p) == 0:
        raise ThresholdError(f"need as many labels as probabilities (got {p.shape} and {y.shape})")
    if not np.all(np.isfinite(p)):
        raise ThresholdError("probabilities must be finite")
    unique = np.unique(p)
    candidates = np.concatenate([[0.5], (unique[:-1] + unique[1:]) / 2]).clip(EDGE, 1 - EDGE)
    scores = mcc_at_thresholds(p, y, candidates)
    best = scores.max()
    tied = np.flatnonzero(scores >= best - 1e-12)
    chosen = float(candidates[tied[np.argmin(np.abs(candidates[tied] - 0.5))]])
    return ThresholdChoice(threshold=chosen,
                           mcc_at_threshold=_mcc(y, (p >= chosen).astype(np.int64)),
                           mcc_at_half=_mcc(y, (p >= 0.5).astype(np.int64)), n=len(p))


def original_probability(p_folded: Any, threshold: float) -> Any:
    """p(acceptable) of the model before folding THRESHOLD, from the folded model's p'.

    p = sigmoid(logit(p') + logit(t)) = p' t / (p' t + (1 - p')(1 - t)); works on floats and arrays."""
    p = np.asarray(p_folded, dtype=np.float64)
    t = float(threshold)
    out = p * t / (p * t + (1.0 - p) * (1.0 - t))
    return float(out) if out.ndim == 0 else out


def threshold_report(p_folded: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray,
                     threshold: float) -> ThresholdReport:
    """MCC of a model folded at THRESHOLD, at that threshold (p' >= 0.5, its argmax) and at the
    original model's 0.5 (p >= 0.5, which is p' >= 1 - t)."""
    p = np.asarray(p_folded, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    return ThresholdReport(threshold=float(threshold), mcc=_mcc(y, (p >= 0.5).astype(np.int64)),
                           mcc_at_half=_mcc(y, (p >= 1.0 - threshold).astype(np.int64)))


def model_threshold(model: Any) -> float:
    """The threshold folded into MODEL (0.5 when none was)."""
    value = getattr(getattr(model, "config", None), "decision_threshold", None)
    return float(value) if isinstance(value, (int, float)) else 0.5


def final_linear(model: Any) -> Any:
    """The classification head's output layer: the last nn.Linear with num_labels outputs
    (BERT and DistilBERT `classifier`, RoBERTa and ELECTRA `classifier.out_proj`)."""
    import torch

    num_labels = int(model.config.num_labels)
    found = [module for _, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and module.out_features == num_labels]
    if not found:
        raise ThresholdError(f"{type(model).__name__}: no output layer with {num_labels} outputs "
                             "to fold a threshold into")
    if found[-1].bias is None:
        raise ThresholdError(f"{type(model).__name__}: its output layer has no bias to fold a threshold into")
    return found[-1]


def fold_threshold(model: Any, threshold: float) -> float:
    """Make MODEL's argmax say "acceptable" exactly when its p(acceptable) >= THRESHOLD did.

    Subtracts logit(THRESHOLD) from the acceptable logit's bias and records the threshold in
    model.config.decision_threshold (saved with the folder). Folding into a model that already
    carries a threshold composes them; returns the threshold now recorded (relative to the
    model as trained)."""
    import torch

    if not 0 < threshold < 1:
        raise ThresholdError(f"threshold {threshold}: must be between 0 and 1")
    if int(model.config.num_labels) != len(LABELS):
        raise ThresholdError(f"a threshold needs a {len(LABELS)}-label classifier, not {model.config.num_labels}")
    layer = final_linear(model)
    shift = logit(threshold)
    with torch.no_grad():
        layer.bias[ACCEPTABLE] -= torch.tensor(shift, dtype=layer.bias.dtype, device=layer.bias.device)
    total = sigmoid(logit(model_threshold(model)) + shift)
    model.config.decision_threshold = total
    return total

