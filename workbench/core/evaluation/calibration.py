"""Calibrating a run after training: the decision threshold chosen on validation, folded into the model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.base.config import TrainConfig
from workbench.core.evaluation.threshold import (
    ACCEPTABLE,
    ThresholdChoice,
    ThresholdError,
    choose_threshold,
    final_linear,
    fold_threshold,
)

# ---------------------------------------------------------------- a run folder

def validation_probabilities(model: Any, tokenizer: Any, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """p(acceptable) and labels of CONFIG's validation split (the split the run was trained with)."""
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import logits_for, softmax

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
    update_eval_json(run_dir, lambda report: report.update(
        calibration={"dataset": "validation", "decision_threshold": recorded, **choice.to_dict()}))
    return choice

