"""The decision threshold and the temperature: chosen on validation, then folded into the classifier.

A 2-label classifier says "acceptable" when p(acceptable) >= 0.5, i.e. when the log-odds
z = z_acceptable - z_unacceptable >= 0. Saying it when p >= t instead is z >= logit(t). The saved
model computes z' = (z - logit(t)) / T: logit(t) comes off the acceptable logit's bias, and both
logits' rows (weights and bias) are divided by T, which divides their difference by T. Its argmax
(z' >= 0) is then exactly the MCC-chosen decision p >= t, for any T > 0, and its p(acceptable) =
sigmoid(z') is the shipped probability, calibrated around that decision by T (fitted on validation
by log-loss, core/evaluation/calibration.py). `pipeline()`, `workbench predict`, the TUI and `eval`
all give the same labels and probabilities from the folder, with no code of ours.

One scale is shown everywhere: the shipped p(acceptable) (decision at 0.5). The model as trained
(before calibration) is p = sigmoid(T logit(p') + logit(t)) (`raw_probability`), decided at t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.core.base.config import LABELS
from workbench.core.base.layout import RunError

ACCEPTABLE = LABELS.index("acceptable")


UNACCEPTABLE = LABELS.index("unacceptable")


# thresholds stay inside (0, 1) so that their logit is finite
EDGE = 1e-6


class ThresholdError(RunError, ValueError):
    """A threshold that cannot be chosen or folded (no data, no bias to fold into): a RunError, so the
    CLI says it in one line (exit 2) and the TUI in a notification."""


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
    return ThresholdChoice(
        threshold=chosen,
        mcc_at_threshold=_mcc(y, (p >= chosen).astype(np.int64)),
        mcc_at_half=_mcc(y, (p >= 0.5).astype(np.int64)),
        n=len(p),
    )


def raw_probability(p_shipped: Any, threshold: float, temperature: float = 1.0) -> Any:
    """p(acceptable) of the model as trained, before folding THRESHOLD and TEMPERATURE, from the
    shipped p': sigmoid(T logit(p') + logit(t)). Works on floats and arrays (p' of 0 or 1 stays so)."""
    p = np.clip(np.asarray(p_shipped, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        z = float(temperature) * (np.log(p) - np.log1p(-p)) + logit(float(threshold))
    out = np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))
    return float(out) if out.ndim == 0 else out


def original_probability(p_folded: Any, threshold: float) -> Any:
    """p(acceptable) of the model before folding THRESHOLD (no temperature), from the folded model's p'."""
    return raw_probability(p_folded, threshold, 1.0)


def threshold_report(
    p_folded: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    threshold: float,
    temperature: float = 1.0,
) -> ThresholdReport:
    """MCC of a model folded at THRESHOLD (and TEMPERATURE), at its decision (p' >= 0.5, its argmax) and
    at the model-as-trained's 0.5 (raw p >= 0.5)."""
    p = np.asarray(p_folded, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    raw = raw_probability(p, threshold, temperature)
    return ThresholdReport(
        threshold=float(threshold),
        mcc=_mcc(y, (p >= 0.5).astype(np.int64)),
        mcc_at_half=_mcc(y, (np.asarray(raw) >= 0.5).astype(np.int64)),
    )


def model_threshold(model: Any) -> float:
    """The threshold folded into MODEL (0.5 when none was)."""
    value = getattr(getattr(model, "config", None), "decision_threshold", None)
    return float(value) if isinstance(value, (int, float)) else 0.5


def final_linear(model: Any) -> Any:
    """The classification head's output layer: the last nn.Linear with num_labels outputs
    (BERT and DistilBERT `classifier`, RoBERTa and ELECTRA `classifier.out_proj`)."""
    import torch

    num_labels = int(model.config.num_labels)
    found = [
        module
        for _, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels
    ]
    if not found:
        raise ThresholdError(
            f"{type(model).__name__}: no output layer with {num_labels} outputs to fold a threshold into"
        )
    if found[-1].bias is None:
        raise ThresholdError(f"{type(model).__name__}: its output layer has no bias to fold a threshold into")
    return found[-1]


def model_temperature(model: Any) -> float:
    """The temperature folded into MODEL (1 when none was)."""
    value = getattr(getattr(model, "config", None), "calibration_temperature", None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0


def set_calibration(model: Any, threshold: float, temperature: float = 1.0) -> tuple[float, float]:
    """Make MODEL compute z' = (z - logit(THRESHOLD)) / TEMPERATURE, z its log-odds as trained.

    Undoes what MODEL already carries (model.config.decision_threshold and .calibration_temperature), then folds
    the new pair: logit(t) off the acceptable logit's bias, both logits' rows (weights, bias) divided
    by T. Records both in model.config (saved with the folder). Returns (threshold, temperature)."""
    import torch

    if not 0 < threshold < 1:
        raise ThresholdError(f"threshold {threshold}: must be between 0 and 1")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ThresholdError(f"temperature {temperature}: must be a positive number")
    if int(model.config.num_labels) != len(LABELS):
        raise ThresholdError(f"a threshold needs a {len(LABELS)}-label classifier, not {model.config.num_labels}")
    layer = final_linear(model)
    old_threshold, old_temperature = model_threshold(model), model_temperature(model)
    with torch.no_grad():
        weight = layer.weight.double() * old_temperature  # back to z - logit(t0)
        bias = layer.bias.double() * old_temperature
        bias[ACCEPTABLE] += logit(old_threshold) - logit(threshold)  # z - logit(t)
        layer.weight.copy_((weight / temperature).to(layer.weight.dtype))
        layer.bias.copy_((bias / temperature).to(layer.bias.dtype))
    model.config.decision_threshold = float(threshold)
    model.config.calibration_temperature = float(temperature)  # "temperature" is a generation setting there
    return float(threshold), float(temperature)


def fold_threshold(model: Any, threshold: float) -> float:
    """Make MODEL's argmax say "acceptable" exactly when its p(acceptable) >= THRESHOLD did.

    Folding into a model that already carries a threshold composes them (its temperature stays);
    returns the threshold now recorded (relative to the model as trained)."""
    if not 0 < threshold < 1:
        raise ThresholdError(f"threshold {threshold}: must be between 0 and 1")
    temperature = model_temperature(model)
    total = sigmoid(logit(model_threshold(model)) + temperature * logit(threshold))
    return set_calibration(model, total, temperature)[0]
