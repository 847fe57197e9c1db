"""Where a classifier fails: slices of an evaluation by sentence length, by confidence, by threshold.

Pure functions over arrays: true labels (0/1), p(acceptable) per sentence and token lengths.
A decision at threshold t is p(acceptable) >= t, as the threshold code decides (core/evaluation/threshold.py);
where the model's recorded labels are at hand they are used as they are, never recomputed from rounded
probabilities. Every figure is on the scale of the probabilities given: the shipped ones (calibrated,
decided at 0.5) unless the caller passes the model-as-trained's (`raw_probability`) and its threshold."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# token buckets ([CLS] and [SEP] included), inclusive bounds; None: no upper bound
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 8), (9, 12), (13, 16), (17, 24), (25, None))
DEFAULT_THRESHOLD = 0.5


def _mcc(labels: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import matthews_corrcoef

    if len(labels) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class only: sklearn says 0 and warns
        return float(matthews_corrcoef(labels, predicted))


def _arrays(
    labels: Sequence[int] | np.ndarray, p_acceptable: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=int)
    p = np.asarray(p_acceptable, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and p_acceptable must be 1-D and of one length ({y.shape} vs {p.shape})")
    if len(p) and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("p_acceptable must be probabilities in [0, 1]")
    return y, p


def decide(p_acceptable: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Predicted labels: acceptable (1) where p(acceptable) >= THRESHOLD."""
    return (np.asarray(p_acceptable) >= threshold).astype(int)


@dataclass
class Slice:
    name: str
    n: int
    accuracy: float
    mcc: float
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bucket_name(low: int, high: int | None) -> str:
    if high is None:
        return f"{low}+"
    return f"<={high}" if low <= 0 else f"{low}-{high}"


def length_slices(
    labels: Sequence[int] | np.ndarray,
    p_acceptable: Sequence[float] | np.ndarray,
    lengths: Sequence[int] | np.ndarray,
    buckets: Sequence[tuple[int, int | None]] = LENGTH_BUCKETS,
    threshold: float = DEFAULT_THRESHOLD,
    predicted: Sequence[int] | np.ndarray | None = None,
) -> list[Slice]:
    """n, accuracy, MCC and error count per token-length bucket (empty buckets included, n = 0), of
    PREDICTED (the model's recorded labels) or else of p >= THRESHOLD."""
    y, p = _arrays(labels, p_acceptable)
    length = np.asarray(lengths, dtype=int)
    if length.shape != y.shape:
        raise ValueError(f"one length per sentence needed ({length.shape} vs {y.shape})")
    predicted = decide(p, threshold) if predicted is None else np.asarray(predicted, dtype=int)
    rows = []
    for low, high in buckets:
        inside = (length >= low) & (length <= (high if high is not None else np.iinfo(int).max))
        n = int(inside.sum())
        right = predicted[inside] == y[inside]
        rows.append(
            Slice(
                name=bucket_name(low, high),
                n=n,
                accuracy=float(right.mean()) if n else 0.0,
                mcc=_mcc(y[inside], predicted[inside]),
                errors=int(n - right.sum()),
            )
        )
    return rows


@dataclass
class ReliabilityBin:
    low: float
    high: float
    n: int
    mean_confidence: float  # mean probability given to the predicted label in the bin; 0 when empty
    accuracy: float  # share of the bin's predictions that are right; 0 when empty


@dataclass
class Reliability:
    bins: list[ReliabilityBin]
    ece: float  # expected calibration error: sum over bins of n/N * |accuracy - mean confidence|

    def to_dict(self) -> dict[str, Any]:
        return {"bins": [asdict(b) for b in self.bins], "ece": self.ece}


def reliability(
    labels: Sequence[int] | np.ndarray,
    p_acceptable: Sequence[float] | np.ndarray,
    n_bins: int = 10,
    predicted: Sequence[int] | np.ndarray | None = None,
) -> Reliability:
    """A reliability diagram of the predicted label's confidence in N_BINS equal bins over [0.5, 1] (the
    last closed), and the expected calibration error. PREDICTED: the model's own labels (default:
    p >= 0.5); the confidence is the probability it gave its label: p where it said acceptable, 1 - p else."""
    y, p = _arrays(labels, p_acceptable)
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    predicted = decide(p) if predicted is None else np.asarray(predicted, dtype=int)
    if predicted.shape != y.shape:
        raise ValueError(f"one predicted label per sentence needed ({predicted.shape} vs {y.shape})")
    confidence = np.where(predicted == 1, p, 1 - p)
    right = predicted == y
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        inside = index == b
        n = int(inside.sum())
        mean_confidence = float(confidence[inside].mean()) if n else 0.0
        accuracy = float(right[inside].mean()) if n else 0.0
        bins.append(
            ReliabilityBin(
                low=float(edges[b]), high=float(edges[b + 1]), n=n, mean_confidence=mean_confidence, accuracy=accuracy
            )
        )
        if n:
            ece += n / len(y) * abs(accuracy - mean_confidence)
    return Reliability(bins=bins, ece=float(ece))


@dataclass
class ThresholdCurve:
    thresholds: list[float]
    mcc: list[float]
    best_threshold: float
    best_mcc: float
    threshold_in_use: float  # the model's decision: 0.5 on the shipped probabilities
    mcc_in_use: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def threshold_curve(
    labels: Sequence[int] | np.ndarray,
    p_acceptable: Sequence[float] | np.ndarray,
    thresholds: Sequence[float] | None = None,
    threshold_in_use: float = DEFAULT_THRESHOLD,
) -> ThresholdCurve:
    """MCC when acceptable means p(acceptable) >= t, for t in 0.05, 0.10 ... 0.95 (default); the best t
    (the lowest of equals)."""
    y, p = _arrays(labels, p_acceptable)
    grid = [round(float(t), 4) for t in (np.arange(1, 20) * 0.05 if thresholds is None else thresholds)]
    if not grid:
        raise ValueError("no thresholds")
    scores = [_mcc(y, decide(p, t)) for t in grid]
    best = int(np.argmax(scores))
    return ThresholdCurve(
        thresholds=grid,
        mcc=scores,
        best_threshold=grid[best],
        best_mcc=scores[best],
        threshold_in_use=threshold_in_use,
        mcc_in_use=_mcc(y, decide(p, threshold_in_use)),
    )


@dataclass
class Slices:
    """All three views of one evaluation."""

    by_length: list[Slice]
    reliability: Reliability
    threshold: ThresholdCurve

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_length": [s.to_dict() for s in self.by_length],
            "reliability": self.reliability.to_dict(),
            "threshold": self.threshold.to_dict(),
        }


def compute_slices(
    labels: Sequence[int] | np.ndarray,
    p_acceptable: Sequence[float] | np.ndarray,
    lengths: Sequence[int] | np.ndarray,
    n_bins: int = 10,
    predicted: Sequence[int] | np.ndarray | None = None,
    threshold_in_use: float = DEFAULT_THRESHOLD,
) -> Slices:
    """The three views; PREDICTED (the model's recorded labels) where known, else p >= THRESHOLD_IN_USE."""
    if predicted is None:
        predicted = decide(np.asarray(p_acceptable, dtype=float), threshold_in_use)
    return Slices(
        by_length=length_slices(labels, p_acceptable, lengths, predicted=predicted),
        reliability=reliability(labels, p_acceptable, n_bins, predicted=predicted),
        threshold=threshold_curve(labels, p_acceptable, threshold_in_use=threshold_in_use),
    )


def evaluation_slices(
    predictions: pd.DataFrame, tokenizer: Any, summary: dict[str, Any] | None = None, before_calibration: bool = False
) -> Slices:
    """The slices of an evaluation's predictions (a frame with sentence, label, predicted and p_acceptable,
    as `EvalReport.predictions` and the predictions files hold), token lengths by TOKENIZER: what
    `workbench eval --slices` and the TUI's Evaluate pane show.

    On the shipped probabilities with the model's recorded labels (decided at 0.5); BEFORE_CALIBRATION,
    on the model as trained, decided at its own 0.5: the column p_acceptable_raw, or p_acceptable mapped
    back with SUMMARY's threshold and temperature (core.evaluation.threshold.raw_probability)."""
    from workbench.core.data.cola import token_lengths
    from workbench.core.evaluation.threshold import raw_probability

    lengths = token_lengths(tokenizer, predictions["sentence"].astype(str).tolist())
    labels = predictions["label"].to_numpy(dtype=int)
    if not before_calibration:
        predicted = predictions["predicted"].to_numpy(dtype=int) if "predicted" in predictions else None
        return compute_slices(labels, predictions["p_acceptable"].to_numpy(dtype=float), lengths, predicted=predicted)
    summary = summary or {}
    threshold = float(summary.get("decision_threshold") or 0.5)
    temperature = float(summary.get("temperature") or 1.0)
    if "p_acceptable_raw" in predictions:
        raw = predictions["p_acceptable_raw"].to_numpy(dtype=float)
    else:
        raw = np.asarray(raw_probability(predictions["p_acceptable"].to_numpy(dtype=float), threshold, temperature))
    return compute_slices(labels, raw, lengths)
