"""Recipe sweeps on Optuna: a TPE search over TrainConfig settings, pruned on per-epoch validation MCC.

Every trial is an ordinary run folder `<study>-t<number>` (its name in the trial's user
attribute `run`); the objective is the run's best validation MCC, never the holdout. The
study lives in an Optuna storage: SQLite in the runs folder by default, or a shared
PostgreSQL/MySQL URL that several machines join to sweep together (no scheduler of ours).

The loop is here; the search space (its file format) is space.py's, the storage storage.py's, creating or
joining a study study.py's, and reading one back summary.py's.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.base.durable import write_json_atomic
from workbench.core.base.layout import check_run_name
from workbench.core.search.space import (
    DEFAULT_STUDY,
    MAX_FAILURES_IN_A_ROW,
    TRIAL_FILE,
    Space,
    SweepError,
    SweepStopped,
    TrialFailed,
    apply_values,
    default_space,
)
from workbench.core.search.storage import default_storage, open_storage, quiet_optuna, safe_url
from workbench.core.search.study import open_study


@dataclass
class TrialStart:
    number: int
    run: str
    params: dict[str, Any]


@dataclass
class TrialEnd:
    number: int
    run: str
    state: str  # complete, pruned, failed, stopped
    value: float | None = None
    epochs_done: int = 0
    error: str = ""


TrialCallback = Callable[[TrialStart | TrialEnd], None]


@dataclass
class SweepRun:
    """What one `run_sweep` call did (the study may hold other machines' trials too)."""

    study: str
    storage: str
    trials: list[TrialEnd] = field(default_factory=list)
    stopped: bool = False


def default_pruner() -> Any:
    """Median pruning on per-epoch validation MCC once 3 trials have finished, from epoch 2 on
    (epoch 1 is often still at MCC 0 for good runs as well as bad ones)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)


def run_sweep(
    base_config: TrainConfig,
    trials: int,
    study_name: str = DEFAULT_STUDY,
    storage: str | None = None,
    space: Space | None = None,
    runs_dir: Path | str = "runs",
    on_event: Callable[[Any], None] | None = None,
    stop: threading.Event | None = None,
    on_trial: TrialCallback | None = None,
    pruner: Any = None,
    keep_checkpoints: bool = False,
    sampler_seed: int | None = None,
    allow_pickle: bool = False,
) -> SweepRun:
    """Run TRIALS trials of study STUDY_NAME (created, or joined when it exists with the same space).

    Each trial trains `apply_values(BASE_CONFIG, suggested)` into RUNS_DIR/<study>-t<number>,
    reporting each epoch's validation MCC to the pruner; a pruned trial is stopped after that
    epoch. ON_EVENT gets the training events, ON_TRIAL a TrialStart and a TrialEnd per trial.
    STOP ends the sweep at the next batch. Checkpoints of finished (complete or pruned) trials are
    deleted unless KEEP_CHECKPOINTS (a sweep makes many runs; their model/ folders stay); a trial that
    failed or was stopped keeps its checkpoint, so `workbench train --resume` can finish it."""
    import optuna
    import optuna.samplers

    from workbench.core.base.errors import TrainingError
    from workbench.core.training.prepare import check_data
    from workbench.core.training.train import train

    check_run_name(f"{study_name}-t0")
    if trials < 1:
        raise SweepError(f"--trials {trials}: must be at least 1")
    problems = base_config.validate()
    if problems:
        raise SweepError("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in problems.items()))
    runs_dir = Path(runs_dir)
    check_data(base_config, runs_dir=runs_dir)  # a map's run is looked up where the trials go
    runs_dir.mkdir(parents=True, exist_ok=True)
    space = space or default_space(base_config)
    if not space.params:
        raise SweepError(f"{space.source}: nothing left to search (every parameter is held fixed)")
    storage = storage or default_storage(runs_dir)
    stop = stop or threading.Event()
    outcome = SweepRun(study=study_name, storage=safe_url(storage))
    failures_in_a_row = [0]

    def objective(trial: optuna.Trial) -> float:
        if stop.is_set():
            raise SweepStopped
        values = space.suggest(trial)
        config = apply_values(base_config, values)
        run_name = f"{study_name}-t{trial.number}"
        run_dir = runs_dir / run_name
        trial.set_user_attr("run", run_name)
        trial.set_user_attr("runs_dir", str(runs_dir.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        if (run_dir / "config.json").exists() or (run_dir / "metrics.jsonl").exists():
            raise SweepError(
                f"{run_dir}: a run already has trial {trial.number}'s name (a study of the same "
                "name in another storage?); use another --study or --runs"
            )
        if on_trial:
            on_trial(TrialStart(trial.number, run_name, dict(values)))
        trial_stop = threading.Event()
        pruned_at: list[int] = []

        def on_train_event(event: Any) -> None:
            if stop.is_set():
                trial_stop.set()
            if _kind(event) == "epoch":
                epoch, mcc = int(_get(event, "epoch")), float(_get(event, "val_mcc"))
                trial.report(mcc, epoch)
                if trial.should_prune():
                    pruned_at.append(epoch)
                    trial_stop.set()
            if on_event:
                on_event(event)

        def finish(state: str, value: float | None = None, epochs: int = 0, error: str = "") -> None:
            if not keep_checkpoints and state in ("complete", "pruned"):  # finished: nothing to resume
                shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
            write_json_atomic(
                run_dir / TRIAL_FILE,
                {
                    "study": study_name,
                    "trial": trial.number,
                    "storage": safe_url(storage),
                    "state": state,
                    "value": value,
                    "params": values,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                },
            )
            end = TrialEnd(trial.number, run_name, state, value, epochs, error)
            outcome.trials.append(end)
            if on_trial:
                on_trial(end)

        try:
            result = train(config, run_dir, on_event=on_train_event, stop=trial_stop, allow_pickle=allow_pickle)
        except TrainingError as err:  # out of memory at this batch size, and the like: this trial only
            if not run_dir.exists():
                raise
            failures_in_a_row[0] += 1
            finish("failed", error=str(err))
            if failures_in_a_row[0] >= MAX_FAILURES_IN_A_ROW:
                raise SweepError(f"{MAX_FAILURES_IN_A_ROW} trials failed in a row; the last: {err}") from None
            raise TrialFailed(str(err)) from None
        if result.status == "done":
            failures_in_a_row[0] = 0
            finish("complete", result.best_val_mcc, result.epochs_done)
            return float(result.best_val_mcc)
        if result.status == "stopped" and pruned_at:
            failures_in_a_row[0] = 0
            finish("pruned", result.best_val_mcc, result.epochs_done)
            raise optuna.TrialPruned(f"validation MCC behind the others at epoch {pruned_at[0]}")
        if result.status == "stopped":
            trial.set_user_attr("stopped", True)
            finish("stopped", None, result.epochs_done)
            raise SweepStopped
        failures_in_a_row[0] += 1
        finish("failed", None, result.epochs_done, result.error)
        raise TrialFailed(result.error)

    def stop_between_trials(study: optuna.Study, _trial: Any) -> None:
        if stop.is_set():
            outcome.stopped = True
            study.stop()

    with quiet_optuna():
        study = open_study(
            study_name,
            open_storage(storage),
            space,
            base_config,
            pruner=pruner if pruner is not None else default_pruner(),
            sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        )
        if stop.is_set():
            outcome.stopped = True
            return outcome
        try:
            study.optimize(
                objective, n_trials=trials, catch=(TrialFailed,), gc_after_trial=True, callbacks=[stop_between_trials]
            )
        except SweepStopped:
            outcome.stopped = True
    return outcome


def _kind(event: Any) -> str:
    return str(event.get("kind") if isinstance(event, dict) else getattr(event, "kind", ""))


def _get(event: Any, key: str) -> Any:
    return event[key] if isinstance(event, dict) else getattr(event, key)
