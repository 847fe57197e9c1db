"""Experiment trackers (TensorBoard, MLflow, Weights & Biases) through Accelerate, all optional.

`--report-to tensorboard,wandb` (TrainConfig.report_to) turns them on. Each is a pip extra of
its own (`pip install 'cola-workbench[tensorboard]'`), never a requirement: a config that names a
tracker this Python lacks fails `TrainConfig.validate()`, before a run folder is made. The
training loop calls four functions here: `accelerator_kwargs` and `start` when it builds its
Accelerator, `log_event` for every event it emits, `finish` when it ends. Accelerate logs on the
main process only. TensorBoard's event files go in the run folder (RUN/tensorboard/); W&B's
files too (RUN/wandb/); MLflow writes where MLFLOW_TRACKING_URI says (by default ./mlruns).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.base.reporting import missing_trackers, tracker_names

if TYPE_CHECKING:
    from workbench.core.base.config import TrainConfig
    from workbench.core.base.events import Event


PROJECT = "cola-workbench"  # the W&B project, the MLflow experiment, and TensorBoard's folder in RUN/tensorboard/


TENSORBOARD_DIR = "tensorboard"


def tensorboard_dir(run_dir: Path) -> Path:
    """The folder of a run's TensorBoard event files (`tensorboard --logdir` it, or the runs folder)."""
    return run_dir / TENSORBOARD_DIR / PROJECT


def accelerator_kwargs(config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """The Accelerator arguments that turn CONFIG's trackers on (none when it names none)."""
    names = tracker_names(config.report_to)
    if not names:
        return {}
    from accelerate.utils import ProjectConfiguration

    return {
        "log_with": names,
        "project_config": ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / TENSORBOARD_DIR)),
    }


def start(accelerator: Any, config: TrainConfig, run_dir: Path) -> None:
    """Open the trackers with the run's settings as hyperparameters, named after the run."""
    names = tracker_names(config.report_to)
    if not names:
        return
    missing = missing_trackers(config.report_to)  # a resumed run's saved config was not validated here
    if missing:
        from workbench.core.base.errors import TrainingError

        raise TrainingError(f"report_to: {missing}")
    run = run_dir.name
    accelerator.init_trackers(
        PROJECT,
        config=hyperparameters(config),
        init_kwargs={"wandb": {"name": run, "dir": str(run_dir)}, "mlflow": {"run_name": run}},
    )


def hyperparameters(config: TrainConfig) -> dict[str, bool | int | float | str]:
    """CONFIG's settings as the flat scalars every tracker takes (TensorBoard's hparams refuse a dict)."""
    values: dict[str, bool | int | float | str] = {}
    for name, value in config.to_dict().items():
        if name == "extra":
            values.update(
                {f"extra.{key}": item for key, item in value.items() if isinstance(item, (bool, int, float, str))}
            )
        else:
            values[name] = value
    return values


def metrics_of(event: Event) -> dict[str, float]:
    """What a tracker records of EVENT: step loss, learning rate and grad norm; the epoch's train and
    validation metrics; the final scores of a finished run. Empty for the other events."""
    if event["kind"] == "step":
        values = {"train/loss": event["loss"], "train/learning_rate": event["lr"]}
        if event["grad_norm"] is not None:
            values["train/grad_norm"] = event["grad_norm"]
        return values
    if event["kind"] == "epoch":
        return {
            "train/epoch": float(event["epoch"]),
            "epoch/train_loss": event["train_loss"],
            "epoch/val_loss": event["val_loss"],
            "epoch/val_accuracy": event["val_accuracy"],
            "epoch/val_mcc": event["val_mcc"],
        }
    if event["kind"] == "end" and event["status"] == "done":
        keys = ("best_val_mcc", "in_domain_dev_mcc", "holdout_mcc", "holdout_accuracy")
        return {f"final/{key}": float(event[key]) for key in keys if key in event}  # type: ignore[literal-required]
    return {}


def log_event(accelerator: Any, event: Event) -> None:
    """Send EVENT's metrics to the trackers at its optimizer step (one rising step for all, as W&B wants)."""
    if accelerator is None or not accelerator.trackers:
        return
    values = metrics_of(event)
    if values:
        accelerator.log(values, step=int(event["step"]))  # type: ignore[typeddict-item]  # step, epoch, end


def finish(accelerator: Any) -> None:
    """Close the trackers (flush TensorBoard's files, end the W&B and MLflow runs).

    Not `accelerator.end_training()`: that also destroys the process group, which belongs to
    whoever launched the processes (`train()` may run again in the same process)."""
    if accelerator is None:
        return
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers = []


def finish_quietly(accelerator: Any) -> str:
    """`finish`, a tracker's own failure said as a warning ("" when none): closing one never raises over the
    run's own outcome (or its original error); the run's files are what count."""
    try:
        finish(accelerator)
    except Exception as err:  # noqa: BLE001 (a tracker's own failure, reported)
        return f"warning: an experiment tracker failed to finish ({type(err).__name__}: {err})"
    return ""
