"""Calibrating a run after training: the decision threshold and the temperature, chosen on validation and
folded into the model (core/evaluation/threshold.py says how).

With z the model's log-odds of acceptable as trained and t the threshold with the best validation MCC,
the saved model computes z' = (z - logit(t)) / T, T fitted on validation by log-loss: its decision (z' >= 0)
is exactly p >= t, and its p(acceptable) = sigmoid(z') is calibrated around that decision."""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.base.config import TrainConfig
from workbench.core.evaluation.threshold import (
    ACCEPTABLE,
    UNACCEPTABLE,
    ThresholdError,
    choose_threshold,
    final_linear,
    logit,
    model_temperature,
    model_threshold,
    set_calibration,
)

# the temperature is searched in [1/20, 20]: beyond, a model is broken rather than miscalibrated
TEMPERATURE_RANGE = (0.05, 20.0)

# what the shipped probabilities are, said in eval.json and by the faces
SHIPPED_SCALE = "shipped p(acceptable) = sigmoid((z - logit(t)) / T), decided at 0.5"


def log_loss(log_odds: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of LABELS (1: acceptable) under p = sigmoid(LOG_ODDS), computed
    stably: log(1 + exp(-z)) for the acceptable, log(1 + exp(z)) for the others."""
    z = np.asarray(log_odds, dtype=np.float64)
    signed = np.where(np.asarray(labels) == ACCEPTABLE, -z, z)
    return float(np.mean(np.logaddexp(0.0, signed)))


def fit_temperature(log_odds: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the log-loss of sigmoid(LOG_ODDS / T) on LABELS (convex in 1/T: a bounded
    1-D search over log T in TEMPERATURE_RANGE)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(log_odds, dtype=np.float64)
    y = np.asarray(labels)
    if len(z) == 0 or not np.all(np.isfinite(z)):
        raise ThresholdError("a temperature needs finite log-odds")
    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    found = minimize_scalar(lambda log_t: log_loss(z / math.exp(log_t), y), bounds=(low, high), method="bounded",
                            options={"xatol": 1e-7})
    return float(math.exp(found.x))


def sigmoid_array(z: np.ndarray) -> np.ndarray:
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


@dataclass
class Calibration:
    """The threshold and temperature folded into a run's model, and what they did on validation."""

    threshold: float  # t, on the model-as-trained's p(acceptable)
    temperature: float  # T
    mcc_at_threshold: float  # validation MCC of the shipped decision (raw p >= t, shipped p' >= 0.5)
    mcc_at_half: float  # validation MCC of the model as trained at raw p >= 0.5
    n: int
    log_loss_before: float  # validation log-loss of the model as trained
    log_loss_after: float  # ... of the shipped probabilities
    ece_before: float  # validation ECE of the model as trained (its confidence, its 0.5 decision)
    ece_after: float  # ... of the shipped probabilities and decision

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_figures(log_odds: np.ndarray, labels: np.ndarray, threshold: float,
                        temperature: float) -> Calibration:
    """What folding (THRESHOLD, TEMPERATURE) does on these (validation) raw LOG_ODDS and LABELS."""
    from workbench.core.evaluation.slices import reliability
    from workbench.core.evaluation.threshold import _mcc

    z = np.asarray(log_odds, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    shipped = (z - logit(threshold)) / temperature
    return Calibration(threshold=float(threshold), temperature=float(temperature),
                       mcc_at_threshold=_mcc(y, (shipped >= 0).astype(np.int64)),
                       mcc_at_half=_mcc(y, (z >= 0).astype(np.int64)), n=len(z),
                       log_loss_before=log_loss(z, y), log_loss_after=log_loss(shipped, y),
                       ece_before=reliability(y, sigmoid_array(z), predicted=(z >= 0).astype(int)).ece,
                       ece_after=reliability(y, sigmoid_array(shipped), predicted=(shipped >= 0).astype(int)).ece)


def choose_calibration(log_odds: np.ndarray, labels: np.ndarray) -> Calibration:
    """t with the best MCC on these (validation) data, then T fitted by log-loss on z - logit(t)."""
    z = np.asarray(log_odds, dtype=np.float64)
    choice = choose_threshold(sigmoid_array(z), labels)
    temperature = fit_temperature(z - logit(choice.threshold), np.asarray(labels))
    return calibration_figures(z, labels, choice.threshold, temperature)


# ---------------------------------------------------------------- a run folder

def validation_log_odds(model: Any, tokenizer: Any, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The log-odds of acceptable of MODEL as trained (whatever it carries folded is undone) on CONFIG's
    validation split (the split the run was trained with), and its labels."""
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import logits_for

    frame = load_cola(config.data or None, config.validation_fraction, config.split_seed)["validation"]
    logits = logits_for(model, tokenizer, frame["sentence"].tolist(), config.max_length,
                        config.eval_batch_size).astype(np.float64)
    folded = logits[:, ACCEPTABLE] - logits[:, UNACCEPTABLE]
    raw = folded * model_temperature(model) + logit(model_threshold(model))
    return raw, frame["label"].to_numpy()


def carries_calibration(model: Any) -> bool:
    """Whether MODEL was saved calibrated with a temperature (not only an older threshold)."""
    return isinstance(getattr(model.config, "calibration_temperature", None), (int, float))


def calibrate_run(run_dir: Path, config: TrainConfig | None = None, *, enabled: bool | None = None,
                  device: Any = None, again: bool = False) -> Calibration | None:
    """Choose the threshold and temperature on RUN_DIR's validation split and fold them into RUN_DIR/model.

    Call it once the best model is saved and before scoring in_domain_dev and the holdout. Validation
    only, never the holdout. Rewrites model/ atomically, then records `decision_threshold` and
    `temperature` in config.json and a `calibration` entry in eval.json. A model that already carries
    a calibration keeps it (a resumed run calibrates once) unless AGAIN: then it is re-chosen from the
    model as trained (`scripts/recalibrate.py`). ENABLED defaults to the config's `calibrate_threshold`;
    off, nothing changes and None is returned. A head with no bias to fold into is left as trained:
    None, and eval.json's `calibration` says why."""
    import json

    from workbench.core.base.durable import existing_dir, replace_dir_atomic, write_json_atomic
    from workbench.core.evaluation.evaluate import update_eval_json
    from workbench.core.model.loading import load_model, load_tokenizer

    run_dir = Path(run_dir)
    config = config or TrainConfig.load(run_dir / "config.json")
    if not (config.calibrate_threshold if enabled is None else enabled):
        return None
    model_dir = existing_dir(run_dir / "model", "config.json")
    if model_dir is None:
        raise ThresholdError(f"{run_dir}: no saved model to calibrate")
    model = load_model(str(model_dir))
    tokenizer = load_tokenizer(str(model_dir))
    try:
        final_linear(model)
    except ThresholdError as err:  # a head we cannot fold into: keep the model as trained, say why
        skipped = {"dataset": "validation", "skipped": str(err)}
        update_eval_json(run_dir, lambda report: report.update(calibration=skipped))
        return None
    if device is not None:
        model = model.to(device)
    raw, labels = validation_log_odds(model, tokenizer, config)
    if carries_calibration(model) and not again:
        calibration = calibration_figures(raw, labels, model_threshold(model), model_temperature(model))
    else:
        calibration = choose_calibration(raw, labels)
        set_calibration(model, calibration.threshold, calibration.temperature)
        staged = run_dir / ".model.tmp"
        shutil.rmtree(staged, ignore_errors=True)
        model.save_pretrained(staged, safe_serialization=True)
        tokenizer.save_pretrained(staged)
        replace_dir_atomic(staged, run_dir / "model")

    saved_config = run_dir / "config.json"
    values = json.loads(saved_config.read_text(encoding="utf-8")) if saved_config.is_file() else config.to_dict()
    values["decision_threshold"] = calibration.threshold
    values["temperature"] = calibration.temperature
    write_json_atomic(saved_config, values)
    entry = {"dataset": "validation", "decision_threshold": calibration.threshold, "scale": SHIPPED_SCALE,
             **calibration.to_dict()}
    update_eval_json(run_dir, lambda report: report.update(calibration=entry))
    return calibration
