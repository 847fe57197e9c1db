"""Calibrating a run after training: the decision threshold and the temperature, chosen on validation and
folded into the model (core/evaluation/threshold.py says how), never making its probabilities worse.

With z the model's log-odds of acceptable as trained, three fits are compared on the validation split:

- *as trained*: z' = z, decided at p >= 0.5;
- *temperature*: z' = z / T, still decided at 0.5, T fitted by log-loss;
- *threshold and temperature*: z' = (z - logit(t)) / T with t the threshold of best validation MCC and T
  fitted by log-loss on z - logit(t): its decision (z' >= 0) is exactly p >= t.

The last keeps the MCC-chosen decision in the model's argmax, and is shipped whenever its validation
log-loss is no worse than the model as trained's. A fit through logit(t) cannot be the identity when
t != 0.5, so on a model already calibrated it can be worse (its p = 0.5 is pinned to the decision boundary);
then the decision stays at 0.5 and the better of the other two by log-loss is shipped. The shipped
probabilities are therefore never worse by validation log-loss than the model as trained; which fit was
shipped, why, and any warning (a temperature on its search bound, an ECE that rose) go to eval.json's
`calibration` entry, the training log and the Evaluate pane."""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.base.config import TrainConfig
from workbench.core.base.layout import RunError
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
# a fitted temperature this close (relatively) to an end of TEMPERATURE_RANGE sits on its bound
BOUND_TOLERANCE = 1e-3

# what the shipped probabilities are, said in eval.json and by the faces
SHIPPED_SCALE = "shipped p(acceptable) = sigmoid((z - logit(t)) / T), decided at 0.5"

# the fits compared (the module's docstring); THRESHOLD_ONLY is what runs calibrated before temperatures carry
AS_TRAINED = "as trained"
TEMPERATURE_ONLY = "temperature"
THRESHOLD_AND_TEMPERATURE = "threshold and temperature"
THRESHOLD_ONLY = "threshold"


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
    found = minimize_scalar(
        lambda log_t: log_loss(z / math.exp(log_t), y), bounds=(low, high), method="bounded", options={"xatol": 1e-7}
    )
    return float(math.exp(found.x))


def on_bound(temperature: float) -> str:
    """'lower' or 'upper' when TEMPERATURE sits on that end of TEMPERATURE_RANGE, else ''."""
    low, high = TEMPERATURE_RANGE
    if temperature <= low * (1 + BOUND_TOLERANCE):
        return "lower"
    if temperature >= high * (1 - BOUND_TOLERANCE):
        return "upper"
    return ""


def sigmoid_array(z: np.ndarray) -> np.ndarray:
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def choice_name(threshold: float, temperature: float) -> str:
    """Which fit the pair (THRESHOLD, TEMPERATURE) is (the module's docstring)."""
    if threshold == 0.5:
        return AS_TRAINED if temperature == 1.0 else TEMPERATURE_ONLY
    return THRESHOLD_ONLY if temperature == 1.0 else THRESHOLD_AND_TEMPERATURE


@dataclass
class Calibration:
    """The threshold and temperature folded into a run's model, and what they did on validation."""

    threshold: float  # t, on the model-as-trained's p(acceptable) (0.5: the decision was not moved)
    temperature: float  # T (1: the log-odds were not scaled)
    mcc_at_threshold: float  # validation MCC of the shipped decision (raw p >= t, shipped p' >= 0.5)
    mcc_at_half: float  # validation MCC of the model as trained at raw p >= 0.5
    n: int
    log_loss_before: float  # validation log-loss of the model as trained
    log_loss_after: float  # ... of the shipped probabilities
    ece_before: float  # validation ECE of the model as trained (its confidence, its 0.5 decision)
    ece_after: float  # ... of the shipped probabilities and decision
    choice: str = ""  # the fit shipped: as trained, temperature, threshold and temperature (choice_name)
    reason: str = ""  # why it was shipped, in words
    warnings: list[str] = field(default_factory=list)  # a temperature on its bound, a worse ECE or log-loss
    best_mcc_threshold: float = 0.5  # the threshold of best validation MCC, shipped or not
    mcc_at_best_threshold: float = 0.0  # ... and its validation MCC
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every fit compared, with its figures

    def __post_init__(self) -> None:
        self.choice = self.choice or choice_name(self.threshold, self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def candidate(self) -> dict[str, Any]:
        """This fit's figures, as `candidates` lists them."""
        return {
            "choice": self.choice,
            "decision_threshold": self.threshold,
            "temperature": self.temperature,
            "log_loss": self.log_loss_after,
            "ece": self.ece_after,
            "mcc": self.mcc_at_threshold,
        }

    def summary(self) -> str:
        """One paragraph for the training log: what was shipped, why, its validation figures, the warnings."""
        if self.choice == AS_TRAINED:
            shipped = "calibration: the model is shipped as trained (no threshold or temperature folded in)"
        else:
            shipped = (
                f"calibration folded into the saved model ({self.choice}): threshold {self.threshold:.3f} on "
                f"the trained model's p(acceptable), temperature {self.temperature:.2f}"
            )
        figures = (
            f"Validation: MCC {self.mcc_at_threshold:.3f} (the trained model at 0.5, as the epochs were "
            f"compared: {self.mcc_at_half:.3f}); log-loss {self.log_loss_before:.4f} -> "
            f"{self.log_loss_after:.4f} and ECE {self.ece_before:.3f} -> {self.ece_after:.3f} on the "
            "shipped p(acceptable)"
        )
        warned = "".join(f". Warning: {warning}" for warning in self.warnings)
        because = f", because {self.reason}" if self.reason else ""
        return f"{shipped}{because}. {figures}{warned}"


def calibration_note(entry: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Which fit a run shipped and why, in lines of at most 30 characters (the Evaluate pane's column at 80
    columns), and its warnings in a few words, from eval.json's `calibration` ENTRY; ([], []) for an entry
    recorded before fits were compared."""
    choice = entry.get("choice")
    if not isinstance(choice, str) or not choice:
        return [], []
    before, after = float(entry.get("log_loss_before", 0.0)), float(entry.get("log_loss_after", 0.0))
    best = float(entry.get("best_mcc_threshold", entry.get("threshold", 0.5)))
    shown = {
        THRESHOLD_AND_TEMPERATURE: "threshold + temperature",
        TEMPERATURE_ONLY: "temperature only",
        THRESHOLD_ONLY: "threshold only",
        AS_TRAINED: "none, as trained",
    }.get(choice, choice)
    lines = [f"fit: {shown}"]
    lines.append("no fit lowered val log-loss" if choice == AS_TRAINED else f"val log-loss {before:.3f} → {after:.3f}")
    if choice in (AS_TRAINED, TEMPERATURE_ONLY) and best != 0.5:
        lines.append(f"MCC t {best:.2f} raised log-loss")
    warnings = []
    bound = on_bound(float(entry.get("temperature", 1.0))) if choice != AS_TRAINED else ""
    if bound:
        warnings.append(f"T on its {bound} bound")
    if after > before:
        warnings.append("log-loss worse than as trained")
    if float(entry.get("ece_after", 0.0)) > float(entry.get("ece_before", 0.0)):
        warnings.append("ECE rose")
    return lines, warnings


def calibration_figures(log_odds: np.ndarray, labels: np.ndarray, threshold: float, temperature: float) -> Calibration:
    """What folding (THRESHOLD, TEMPERATURE) does on these (validation) raw LOG_ODDS and LABELS."""
    from workbench.core.evaluation.slices import reliability
    from workbench.core.evaluation.threshold import _mcc

    z = np.asarray(log_odds, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    shipped = (z - logit(threshold)) / temperature
    mcc_at_threshold = _mcc(y, (shipped >= 0).astype(np.int64))
    return Calibration(
        threshold=float(threshold),
        temperature=float(temperature),
        mcc_at_threshold=mcc_at_threshold,
        mcc_at_half=_mcc(y, (z >= 0).astype(np.int64)),
        n=len(z),
        log_loss_before=log_loss(z, y),
        log_loss_after=log_loss(shipped, y),
        ece_before=reliability(y, sigmoid_array(z), predicted=(z >= 0).astype(int)).ece,
        ece_after=reliability(y, sigmoid_array(shipped), predicted=(shipped >= 0).astype(int)).ece,
        best_mcc_threshold=float(threshold),
        mcc_at_best_threshold=mcc_at_threshold,
    )


def calibration_warnings(calibration: Calibration) -> list[str]:
    """What a reader of CALIBRATION's figures should be told: a temperature on its search bound, validation
    log-loss or ECE worse than the model as trained's."""
    warnings = []
    bound = on_bound(calibration.temperature) if calibration.choice != AS_TRAINED else ""
    if bound:
        low, high = TEMPERATURE_RANGE
        meaning = (
            "the model's log-odds hardly vary on validation, so the fit stretched them as far as it may"
            if bound == "lower"
            else "the model's log-odds say little on validation, so the fit flattened them as far as it may"
        )
        warnings.append(
            f"the temperature {calibration.temperature:.2f} sits on the {bound} bound of its search "
            f"({low:g} to {high:g}): {meaning}; a model this far off is more likely broken than "
            "miscalibrated"
        )
    if calibration.log_loss_after > calibration.log_loss_before:
        warnings.append(
            f"the shipped probabilities' validation log-loss is worse than the model as trained's "
            f"({calibration.log_loss_before:.4f} -> {calibration.log_loss_after:.4f}): calibrate "
            "again (scripts/recalibrate.py)"
        )
    if calibration.ece_after > calibration.ece_before:
        warnings.append(
            f"validation ECE rose ({calibration.ece_before:.3f} -> {calibration.ece_after:.3f}); the "
            f"fit is chosen by log-loss, and ECE's 10 bins are coarse on {calibration.n} sentences"
        )
    return warnings


def choose_calibration(log_odds: np.ndarray, labels: np.ndarray) -> Calibration:
    """The fit to ship, of the three the module's docstring names, chosen on these (validation) data:
    the MCC-chosen threshold with its temperature when its log-loss is no worse than the model as
    trained's (or when the model as trained gives every sentence one label at 0.5: its decision is then
    worth nothing), else the better by log-loss of the temperature alone and the model as trained."""
    z = np.asarray(log_odds, dtype=np.float64)
    y = np.asarray(labels)
    best = choose_threshold(sigmoid_array(z), y)
    as_trained = calibration_figures(z, y, 0.5, 1.0)
    folded = calibration_figures(z, y, best.threshold, fit_temperature(z - logit(best.threshold), y))
    before = as_trained.log_loss_before
    if best.threshold == 0.5:
        scaled = folded
        moved = "the best validation MCC is at 0.5 already"
    else:
        scaled = calibration_figures(z, y, 0.5, fit_temperature(z, y))
        moved = ""
    # a model that labels every validation sentence alike at 0.5 decides nothing there: its threshold is what
    # makes its labels worth having, whatever it costs the probabilities (said in the reason and the warnings)
    one_label = bool(np.all(z >= 0) or np.all(z < 0))
    if best.threshold != 0.5 and folded.log_loss_after <= before:
        chosen = folded
        chosen.reason = (
            f"the threshold of best validation MCC, with its fitted temperature, does not make "
            f"validation log-loss worse ({before:.4f} -> {folded.log_loss_after:.4f})"
        )
    elif best.threshold != 0.5 and one_label and folded.mcc_at_threshold > as_trained.mcc_at_half:
        chosen = folded
        chosen.reason = (
            f"the model as trained labels every validation sentence "
            f"{'acceptable' if z[0] >= 0 else 'unacceptable'} at 0.5 (MCC {as_trained.mcc_at_half:.3f}); "
            f"the threshold of best validation MCC ({best.threshold:.3f}: MCC "
            f"{folded.mcc_at_threshold:.3f}) is shipped though validation log-loss rises "
            f"({before:.4f} -> {folded.log_loss_after:.4f})"
        )
    else:
        if best.threshold != 0.5:
            moved = (
                f"the threshold of best validation MCC ({best.threshold:.3f}: MCC {folded.mcc_at_threshold:.3f}, "
                f"{as_trained.mcc_at_half:.3f} at 0.5) would make validation log-loss worse at any temperature "
                f"({before:.4f} -> {folded.log_loss_after:.4f}), so the decision stays at 0.5"
            )
        if scaled.log_loss_after < before:
            chosen = scaled
            chosen.reason = (
                f"{moved}; the temperature alone lowers log-loss ({before:.4f} -> {scaled.log_loss_after:.4f})"
            )
        else:
            chosen = as_trained
            chosen.reason = f"{moved}; no temperature lowers log-loss ({before:.4f})"
    chosen.best_mcc_threshold, chosen.mcc_at_best_threshold = best.threshold, folded.mcc_at_threshold
    compared = [as_trained, scaled] + ([folded] if folded is not scaled else [])
    chosen.candidates = [fit.candidate() for fit in compared]
    chosen.warnings = calibration_warnings(chosen)
    return chosen


def carried_calibration(log_odds: np.ndarray, labels: np.ndarray, threshold: float, temperature: float) -> Calibration:
    """The figures of a calibration a model already carries (a resumed run calibrates once), with the warnings
    a fit chosen before this module compared fits may need."""
    carried = calibration_figures(log_odds, labels, threshold, temperature)
    carried.reason = "the saved model already carried it (a run is calibrated once)"
    carried.warnings = calibration_warnings(carried)
    return carried


# ---------------------------------------------------------------- a run folder


def validation_log_odds(
    model: Any, tokenizer: Any, config: TrainConfig, frame: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The log-odds of acceptable of MODEL as trained (whatever it carries folded is undone) on CONFIG's
    validation split (the split the run was trained with; FRAME when the caller has it loaded), and its labels."""
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import logits_for

    if frame is None:
        frame = load_cola(config.data or None, config.validation_fraction, config.split_seed)["validation"]
    logits = logits_for(model, tokenizer, frame["sentence"].tolist(), config.max_length, config.eval_batch_size).astype(
        np.float64
    )
    folded = logits[:, ACCEPTABLE] - logits[:, UNACCEPTABLE]
    raw = folded * model_temperature(model) + logit(model_threshold(model))
    return raw, frame["label"].to_numpy()


def _recorded_choice(run_dir: Path, calibration: Calibration) -> None:
    """Give CALIBRATION (the figures of what a model carries) the choice, reason and candidates eval.json
    recorded when that same pair was chosen, so that a run calibrated again on resume records the same entry."""
    from workbench.core.evaluation.recorded import read_eval_json

    try:
        recorded = read_eval_json(run_dir).get("calibration")
    except RunError:
        return
    if (
        not isinstance(recorded, dict)
        or recorded.get("threshold") != calibration.threshold
        or recorded.get("temperature") != calibration.temperature
        or not recorded.get("choice")
    ):
        return
    for key in ("choice", "reason", "best_mcc_threshold", "mcc_at_best_threshold", "candidates"):
        if key in recorded:
            setattr(calibration, key, recorded[key])


def carries_calibration(model: Any) -> bool:
    """Whether MODEL was saved calibrated with a temperature (not only an older threshold)."""
    return isinstance(getattr(model.config, "calibration_temperature", None), (int, float))


def calibrate_run(
    run_dir: Path,
    config: TrainConfig | None = None,
    *,
    enabled: bool | None = None,
    device: Any = None,
    again: bool = False,
    validation: Any = None,
) -> Calibration | None:
    """Choose the threshold and temperature on RUN_DIR's validation split (`choose_calibration`: never
    worse by validation log-loss than the model as trained) and fold them into RUN_DIR/model.

    Call it once the best model is saved and before scoring in_domain_dev and the holdout. Validation
    only, never the holdout. Rewrites model/ atomically, then records `decision_threshold` and
    `temperature` in config.json and a `calibration` entry in eval.json. A model that already carries
    a calibration keeps it (a resumed run calibrates once) unless AGAIN: then it is re-chosen from the
    model as trained (`scripts/recalibrate.py`). ENABLED defaults to the config's `calibrate_threshold`;
    off, nothing changes and None is returned. A head with no bias to fold into is left as trained:
    None, and eval.json's `calibration` says why. VALIDATION: the run's validation frame, when the caller
    has it loaded (a training's finish), else read from CONFIG's data."""
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
    raw, labels = validation_log_odds(model, tokenizer, config, validation)
    if carries_calibration(model) and not again:
        calibration = carried_calibration(raw, labels, model_threshold(model), model_temperature(model))
        _recorded_choice(run_dir, calibration)
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
    entry = {
        "dataset": "validation",
        "decision_threshold": calibration.threshold,
        "scale": SHIPPED_SCALE,
        **calibration.to_dict(),
    }
    update_eval_json(run_dir, lambda report: report.update(calibration=entry))
    return calibration
