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

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.config import LABELS, TrainConfig

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


# ---------------------------------------------------------------- a run folder

def validation_probabilities(model: Any, tokenizer: Any, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """p(acceptable) and labels of CONFIG's validation split (the split the run was trained with)."""
    from workbench.core.data import load_cola
    from workbench.core.evaluate import logits_for, softmax

    frame = load_cola(config.data or None, config.validation_fraction, config.split_seed)["validation"]
    logits = logits_for(model, tokenizer, frame["sentence"].tolist(), config.max_length, config.eval_batch_size)
    return softmax(logits)[:, ACCEPTABLE], frame["label"].to_numpy()


def calibrate_run(run_dir: Path, config: TrainConfig | None = None, *, enabled: bool | None = None,
                  device: Any = None, val_probabilities: Sequence[float] | np.ndarray | None = None,
                  val_labels: Sequence[int] | np.ndarray | None = None) -> ThresholdChoice | None:
    """Choose the threshold on RUN_DIR's validation split and fold it into RUN_DIR/model.

    Call it once the best model is saved and before scoring in_domain_dev and the holdout.
    Validation only, never the holdout: the probabilities are the saved model's own on the run's
    validation split (computed here unless VAL_PROBABILITIES and VAL_LABELS are given). Rewrites
    model/ atomically, then records `decision_threshold` in config.json and a `calibration`
    entry in eval.json. ENABLED defaults to the config's `calibrate_threshold`; off, nothing
    changes and None is returned. A head with no bias to fold into is left as trained: None,
    and eval.json's `calibration` says why."""
    from workbench.core.model import load_model, load_tokenizer
    from workbench.core.runs import existing_dir, replace_dir_atomic, write_json_atomic

    run_dir = Path(run_dir)
    config = config or TrainConfig.load(run_dir / "config.json")
    if not (config.calibrate_threshold if enabled is None else enabled):
        return None
    model_dir = existing_dir(run_dir / "model", "config.json")
    if model_dir is None:
        raise ThresholdError(f"{run_dir}: no saved model to calibrate")
    model = load_model(str(model_dir))
    tokenizer = load_tokenizer(str(model_dir))
    eval_path = run_dir / "eval.json"
    report = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else {}
    try:
        final_linear(model)
    except ThresholdError as err:  # a head we cannot fold into: keep the model as trained, say why
        report["calibration"] = {"dataset": "validation", "skipped": str(err)}
        write_json_atomic(eval_path, report)
        return None
    if device is not None:
        model = model.to(device)
    if val_probabilities is None or val_labels is None:
        val_probabilities, val_labels = validation_probabilities(model, tokenizer, config)
    choice = choose_threshold(val_probabilities, val_labels)
    recorded = fold_threshold(model, choice.threshold)

    staged = run_dir / ".model.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    model.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)
    replace_dir_atomic(staged, run_dir / "model")

    saved_config = run_dir / "config.json"
    values = json.loads(saved_config.read_text(encoding="utf-8")) if saved_config.is_file() else config.to_dict()
    values["decision_threshold"] = recorded
    write_json_atomic(saved_config, values)
    report["calibration"] = {"dataset": "validation", "decision_threshold": recorded, **choice.to_dict()}
    write_json_atomic(eval_path, report)
    return choice
