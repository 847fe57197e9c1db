"""After the last step: calibrate the decision threshold and evaluate the best model on the final splits,
each stage announced; every part done is recorded, so a run killed here resumes with what is left.

The nearest-neighbour index of the training sentences is not built here: the faces build it on first use
and keep it beside the model (core.explore.neighbors.run_index), so a run nobody explores (a sweep's trial,
a seed group's member, a fold of `data issues`) spends no pass over its training sentences on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.base.durable import fault_point, fsync_dir, fsync_file
from workbench.core.base.events import EndEvent, Event, LogEvent, StageEvent, now
from workbench.core.base.layout import MODEL_DIR
from workbench.core.training.checkpoint import update_checkpoint_meta
from workbench.core.training.position import Position, TrainResult
from workbench.core.training.prepare import RunData
from workbench.core.training.step import out_of_memory_as

EventCallback = Callable[[Event], None]


def calibrate_saved_model(
    run_dir: Path, config: TrainConfig, device: Any, emit: EventCallback, data: RunData | None = None
) -> dict[str, Any]:
    """Fold the validation-best decision threshold and temperature into RUN_DIR's model/
    (core/evaluation/calibration.py), unless turned off; its entries for the end event."""
    from workbench.core.evaluation.calibration import calibrate_run

    if not (run_dir / MODEL_DIR).is_dir():
        return {}
    size = config.eval_batch_size
    with out_of_memory_as(
        f"out of memory calibrating the decision threshold at eval batch size {size} "
        f"(max length {config.max_length}); the trained model is kept: free some "
        "memory and resume the run to finish it"
    ):
        choice = calibrate_run(run_dir, config, device=device, validation=None if data is None else data["validation"])
    if choice is None:
        return {}
    emit(LogEvent(kind="log", time=now(), message=choice.summary()))
    return {"decision_threshold": choice.threshold, "temperature": choice.temperature}


FINISH_STAGES = 3  # calibrating, evaluating in_domain_dev, evaluating holdout


def stage_event(stage: str, index: int, sentences: int) -> StageEvent:
    """The finish's INDEX-th stage (of FINISH_STAGES) begins, over SENTENCES sentences."""
    return StageEvent(kind="stage", time=now(), stage=stage, index=index, stages=FINISH_STAGES, sentences=sentences)


def evaluate_saved_model(
    run_dir: Path,
    config: TrainConfig,
    tokenizer: Any,
    device: Any,
    emit: EventCallback | None = None,
    data: RunData | None = None,
) -> dict[str, Any]:
    """Score RUN_DIR's best model (calibrated), loaded from model/, on in_domain_dev and the holdout;
    records them in eval.json and the predictions files, on the disk before it returns. Each split's stage
    is announced through EMIT as it begins."""
    from workbench.core.data.cola import FINAL_SPLITS, load_cola
    from workbench.core.evaluation.evaluate import evaluate_frame, record_report
    from workbench.core.model.loading import load_model

    fault_point("final-eval")  # crash tests: a kill here resumes the evaluation
    if not (run_dir / MODEL_DIR).is_dir():
        return {}
    size = config.eval_batch_size
    announce = emit or (lambda event: None)
    reports = {}
    with out_of_memory_as(
        f"out of memory in the final evaluation at eval batch size {size} (max length "
        f"{config.max_length}); the trained model is kept: free some memory and resume "
        "the run to evaluate it"
    ):
        model = load_model(str(run_dir / MODEL_DIR)).to(device)
        cola = (
            data if data is not None else load_cola(config.data or None, config.validation_fraction, config.split_seed)
        )
        for index, name in enumerate(FINAL_SPLITS, start=2):
            announce(stage_event(f"evaluating {name}", index, len(cola[name])))
            reports[name] = evaluate_frame(model, tokenizer, cola[name], name, config.max_length, size)
    for report in reports.values():
        fsync_file(record_report(run_dir, report))  # on the disk before `evaluated` is
    fsync_dir(run_dir)
    holdout, dev = reports["holdout"], reports["in_domain_dev"]
    warning = {"holdout_warning": holdout.warning()} if holdout.warning() else {}  # worse than the majority class
    return {"holdout_mcc": holdout.mcc, "holdout_accuracy": holdout.accuracy, "in_domain_dev_mcc": dev.mcc, **warning}


def finish_run(
    run_dir: Path,
    config: TrainConfig,
    position: Position,
    *,
    emit: EventCallback,
    main_process: bool,
    device: Any,
    tokenizer: Any,
    data: RunData | None = None,
) -> TrainResult:
    """The end of a trained run: calibrate (once), evaluate, end. Both read the best model from the disk.
    Each part done is recorded in the checkpoint's meta.json, so that a run killed here resumes with
    what is left; the end event comes before `evaluated` (a kill between them evaluates again, which
    changes nothing). Only the main process (MAIN_PROCESS) calibrates, evaluates and writes; every
    process emits the end event."""
    final: dict[str, Any] = {}
    if main_process:
        if not position.calibrated:
            if config.calibrate_threshold and (run_dir / MODEL_DIR).is_dir():
                emit(stage_event("calibrating the decision threshold", 1, position.validation_sentences))
            position.calibration = calibrate_saved_model(run_dir, config, device, emit, data)
            position.calibrated = True
            update_checkpoint_meta(run_dir, position.to_meta())
        scores = evaluate_saved_model(run_dir, config, tokenizer, device, emit, data)
        final = {**scores, **position.calibration} if scores else {}
    end = EndEvent(
        kind="end",
        time=now(),
        status="done",
        step=position.step,
        epoch=position.epoch,
        best_epoch=position.best_epoch,
        best_val_mcc=position.best_val_mcc,
    )
    end.update(final)  # type: ignore[typeddict-item]  # holdout_mcc, holdout_accuracy, in_domain_dev_mcc
    emit(end)
    if main_process:
        position.evaluated = True
        update_checkpoint_meta(run_dir, position.to_meta())
    return position.result(run_dir, "done", final=final)
