"""Out-of-fold probabilities for `data issues`: K short fine-tunes as one resumable job.

The training split (the run's data and seeded validation split) is cut into K folds, stratified by label
and seeded (core/explore/label_issues.py `assign_folds`). Fold k's run trains on the training split minus
fold k, through a label-overrides file that drops fold k's lines (core/data/overrides.py), validates on the
unchanged validation split, then predicts p(acceptable) for fold k's sentences, which it never saw.

A fold group is a folder `runs/<group>/` holding `group.json` (kind "folds": its members, settings, K and
the seed), `out_of_fold.tsv` (each training sentence's fold, and its p(acceptable) once its fold is
predicted) and `fold-<k>-overrides.tsv`; each member is an ordinary run `runs/<group>-f<k>`. Running the
same job again continues it: a fold whose probabilities are saved is neither retrained nor predicted again,
a fold run that stopped is resumed from its checkpoint, and a finished one is only predicted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np

from workbench.core.base.config import TrainConfig
from workbench.core.base.durable import write_json_atomic
from workbench.core.base.errors import TrainingError
from workbench.core.base.layout import check_run_name, is_run_folder, model_folder
from workbench.core.data.overrides import Override, write_overrides
from workbench.core.explore.label_issues import (
    OUT_OF_FOLD_FILE,
    OUT_OF_FOLD_KEY,
    LabelIssuesError,
    assign_folds,
    read_out_of_fold,
    write_out_of_fold,
)
from workbench.core.runs.status import run_info
from workbench.core.search.groups import GROUP_FILE, GroupError, group_dir

if TYPE_CHECKING:
    import pandas as pd

FOLDS_KIND = "folds"  # group.json's `kind` for a fold group (a seed group has none)
DEFAULT_FOLDS = 5
# Each fold's fine-tune: 3 epochs at the batch the epochs choose (32). One epoch (at batch 8) leaves the fold
# models near chance on the validation split, and their out-of-fold probabilities say little; 3 epochs at
# batch 32 cost about what 1 epoch at batch 8 does.
DEFAULT_EPOCHS = 3
EventCallback = Callable[[Any], None]  # fold events and each fold run's training events


class FoldEvent(TypedDict):
    """The job moved on in fold FOLD of FOLDS (run RUN): STATE is `start` (a new fold run trains), `resume` (a
    stopped one continues), `predict` (its held-out sentences are scored), `done` (their probabilities are
    saved) or `kept` (done by an earlier run of the job: neither retrained nor predicted)."""

    kind: Literal["fold"]
    fold: int
    folds: int
    run: str
    state: Literal["start", "resume", "predict", "done", "kept"]
    train_sentences: int  # the training split minus this fold
    held_out: int  # this fold's sentences


def fold_run_name(group: str, fold: int) -> str:
    return f"{group}-f{fold}"


def overrides_name(fold: int) -> str:
    return f"fold-{fold}-overrides.tsv"


@dataclass
class OutOfFold:
    """Where the job stands: STATUS `done` (every sentence predicted) or `stopped` (in fold STOPPED_FOLD);
    TABLE is the group's out_of_fold.tsv (line, sentence, label, fold, p_acceptable)."""

    group: str
    path: Path
    folds: int
    status: str
    table: pd.DataFrame
    stopped_fold: int = 0


def training_split(config: TrainConfig) -> pd.DataFrame:
    """CONFIG's training split (its data and seeded validation split), as every fold run sees it before its
    overrides drop a fold."""
    from workbench.core.training.prepare import check_data

    return check_data(config)["train"].reset_index(drop=True)


def _settings(config: TrainConfig) -> dict[str, Any]:
    """CONFIG as group.json records it and a rerun must match it."""
    return TrainConfig.from_dict(config.to_dict()).to_dict()


def _fold_group(runs_dir: Path, name: str, config: TrainConfig, folds: int) -> tuple[Path, pd.DataFrame]:
    """The fold group NAME: made (group.json, the fold assignment, each fold's overrides file), or read back
    when an earlier run of the same job made it (GroupError when it was made otherwise)."""
    folder = group_dir(runs_dir, name)
    frame = training_split(config)
    record_path = folder / GROUP_FILE
    if record_path.is_file():
        return folder, _reopen(folder, frame, config, folds)
    if folder.exists():
        raise GroupError(f"{folder}: already exists and is not a fold group; pick another --name")
    members = [check_run_name(fold_run_name(name, fold)) for fold in range(1, folds + 1)]
    taken = [member for member in members if (Path(runs_dir) / member).exists()]
    if taken:
        raise GroupError(f"{Path(runs_dir) / taken[0]}: a run already has this fold's name; pick another --name")
    labels = frame["label"].to_numpy()
    table = frame[["line", "sentence", "label"]].copy()
    table["fold"] = assign_folds(labels, folds, config.seed)  # a bad K stops here, before anything is written
    table["p_acceptable"] = np.nan
    folder.mkdir(parents=True)
    for fold in range(1, folds + 1):
        held = table[table["fold"] == fold]
        write_overrides(
            folder / overrides_name(fold),
            [
                Override(int(r.line), str(r.sentence), int(r.label), "drop", f"held out: fold {fold} of {folds}")
                for r in held.itertuples()
            ],
        )
    write_out_of_fold(folder / OUT_OF_FOLD_FILE, table)
    write_json_atomic(
        record_path,
        {
            "group": name,
            "kind": FOLDS_KIND,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "folds": folds,
            "fold_seed": config.seed,
            "seeds": [config.seed],
            "members": [{"run": run, "seed": config.seed, "fold": k} for k, run in enumerate(members, start=1)],
            "config": _settings(config),
        },
    )
    return folder, table


def _reopen(folder: Path, frame: pd.DataFrame, config: TrainConfig, folds: int) -> pd.DataFrame:
    """The saved out-of-fold table of FOLDER, after checking that it is the same job on the same data."""
    try:
        record = json.loads((folder / GROUP_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise GroupError(f"{folder / GROUP_FILE}: cannot read it ({err})") from None
    if not isinstance(record, dict) or record.get("kind") != FOLDS_KIND:
        raise GroupError(f"{folder}: a seed group, not a fold group of `data issues`; pick another --name")
    if int(record.get("folds", 0)) != folds:
        raise GroupError(
            f"{folder}: made with --folds {record.get('folds')}, not {folds}; repeat it as made or pick another --name"
        )
    recorded = TrainConfig.from_dict(record.get("config") or {}).to_dict()
    wanted = _settings(config)
    changed = [key for key in wanted if recorded.get(key) != wanted[key]]
    if changed:
        said = ", ".join(f"{key} {recorded.get(key)!r} (now {wanted[key]!r})" for key in changed)
        raise GroupError(f"{folder}: made with other settings: {said}; repeat them or pick another --name")
    table = read_out_of_fold(folder / OUT_OF_FOLD_FILE)
    same = (
        len(table) == len(frame)
        and (table["line"].to_numpy() == frame["line"].to_numpy()).all()
        and (table["label"].to_numpy() == frame["label"].to_numpy()).all()
        and (table["sentence"].to_numpy() == frame["sentence"].astype(str).to_numpy()).all()
    )
    if not same:
        raise GroupError(
            f"{folder / OUT_OF_FOLD_FILE}: made on other training sentences than the data gives now; "
            "pick another --name"
        )
    return table


def _fold_config(config: TrainConfig, folder: Path, fold: int, folds: int) -> TrainConfig:
    """Fold FOLD's run: CONFIG training without the fold's sentences (its overrides file drops them)."""
    marker = {"group": folder.name, "fold": fold, "folds": folds}
    return replace(
        config,
        overrides=str((folder / overrides_name(fold)).resolve()),
        extra={**config.extra, OUT_OF_FOLD_KEY: marker},
    )


def _trained(run_dir: Path) -> bool:
    """RUN_DIR finished training (its model saved, evaluated): nothing to resume, only to predict with."""
    return is_run_folder(run_dir) and run_info(run_dir).status == "done" and (run_dir / "model").is_dir()


def predict_fold(run_dir: Path, sentences: list[str], config: TrainConfig, allow_pickle: bool = False) -> np.ndarray:
    """p(acceptable) of SENTENCES by RUN_DIR's model (its best epoch, as saved), in batches."""
    from workbench.core.model.predict import InputError, Predictor

    predictor = Predictor.load(model_folder(run_dir), max_length=config.max_length, allow_pickle=allow_pickle)
    predictions = predictor.predict_many(sentences, batch_size=config.eval_batch_size)
    values = []
    for sentence, prediction in zip(sentences, predictions, strict=True):
        if isinstance(prediction, InputError):
            raise LabelIssuesError(f"{sentence!r}: cannot be classified ({prediction})")
        values.append(prediction.probabilities["acceptable"])
    return np.asarray(values, dtype=np.float64)


def out_of_fold_probabilities(
    config: TrainConfig,
    folds: int,
    runs_dir: Path,
    name: str,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    allow_pickle: bool = False,
) -> OutOfFold:
    """Every training sentence's out-of-fold p(acceptable) under CONFIG, by FOLDS fine-tunes as fold group NAME
    in RUNS_DIR; continues the group where an earlier call stopped. Stops after the fold that STOP interrupted
    (its checkpoint kept: call again to go on). TrainingError when a fold's training fails."""
    from workbench.core.training.train import train

    stop = stop or threading.Event()
    emit = on_event or (lambda event: None)
    problems = config.validate()
    if problems:
        raise GroupError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    runs_dir = Path(runs_dir)
    folder, table = _fold_group(runs_dir, name, config, folds)
    for fold in range(1, folds + 1):
        held = (table["fold"] == fold).to_numpy()
        run = fold_run_name(name, fold)
        run_dir = runs_dir / run

        def event(state: Any, fold: int = fold, run: str = run, held: np.ndarray = held) -> FoldEvent:
            return FoldEvent(
                kind="fold",
                fold=fold,
                folds=folds,
                run=run,
                state=state,
                train_sentences=int((~held).sum()),
                held_out=int(held.sum()),
            )

        if not np.isnan(table.loc[held, "p_acceptable"].to_numpy()).any():
            emit(event("kept"))
            continue
        if stop.is_set():
            return OutOfFold(name, folder, folds, "stopped", table, stopped_fold=fold)
        if not _trained(run_dir):
            resume = is_run_folder(run_dir)
            emit(event("resume" if resume else "start"))
            result = train(
                _fold_config(config, folder, fold, folds),
                run_dir,
                on_event=on_event,
                stop=stop,
                resume=resume,
                allow_pickle=allow_pickle,
            )
            if result.status == "stopped":
                return OutOfFold(name, folder, folds, "stopped", table, stopped_fold=fold)
            if result.status == "failed":
                raise TrainingError(f"fold {fold} (run {run}) failed: {result.error}; run the job again to resume it")
        emit(event("predict"))
        sentences = table.loc[held, "sentence"].astype(str).tolist()
        table.loc[held, "p_acceptable"] = predict_fold(run_dir, sentences, config, allow_pickle)
        write_out_of_fold(folder / OUT_OF_FOLD_FILE, table)
        emit(event("done"))
    return OutOfFold(name, folder, folds, "done", table)
