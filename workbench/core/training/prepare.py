"""Before a run: the checks (settings, data, model source, the run folder) and the prepared run they hand down:
CoLA loaded once, the splits, the rows the run trains on (core/training/selection.py), the tokenizer and the
encoded rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.base.durable import write_bytes_atomic
from workbench.core.base.errors import TrainingError
from workbench.core.base.layout import CONFIG_FILE, METRICS_FILE, check_writable, is_run_folder
from workbench.core.data.cola import CoLA
from workbench.core.runs.metrics import read_metrics
from workbench.core.runs.train_rows import OVERRIDES_COPY, write_train_rows
from workbench.core.training.checkpoint import checkpoint_meta
from workbench.core.training.selection import TrainingRows, choose_training_rows, recorded_training_rows


@dataclass
class RunData(CoLA):
    """The run's splits as load_cola draws them (train, validation, in_domain_dev, holdout), `train` replaced by
    the rows the run trains on: overrides, map regions and train_limit applied. CHOSEN says how they were chosen,
    for a new run to record (None when they were read back from the run folder)."""

    chosen: TrainingRows | None = None


def prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> tuple[TrainConfig, RunData]:
    """Check the folder; the config to use (the saved one when resuming) and its data, loaded once here for
    the whole run (the loop, the calibration and the final evaluation read these frames)."""
    problems = config.validate()
    if problems:
        raise TrainingError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    data: RunData | None = None
    if not resume:
        data = check_data(config, runs_dir=run_dir.parent)  # a bad data or overrides file stops here, before a run
        # folder is made
        check_model_source(config)  # so does an unreachable hub
    check_writable(run_dir)
    saved = run_dir / CONFIG_FILE
    if resume:
        if not is_run_folder(run_dir):
            raise TrainingError(f"{run_dir}: not a run folder (no config.json)")
        check_resumable(run_dir)  # here, before anything is written to the run
        config = TrainConfig.load(saved)
        data = check_data(config, run_dir)  # the rows it recorded at its start
        check_model_source(config)
        return config, data
    if saved.exists() or (run_dir / METRICS_FILE).exists():
        raise TrainingError(f"{run_dir}: a run already exists here; resume it with --resume or pick another name")
    assert data is not None
    return config, data


def check_resumable(run_dir: Path) -> None:
    """Refuse to resume RUN_DIR when nothing is left to do: trained and evaluated (its checkpoint
    says so; a checkpoint from before `evaluated` was recorded, or none, when its last end event
    is done), or its checkpoint deleted (a sweep deletes those of its trials). A run killed before
    its first checkpoint is resumable: from step 0."""
    meta = checkpoint_meta(run_dir)
    events = read_metrics(run_dir)
    ends = [e for e in events if e["kind"] == "end"]
    done = bool(ends) and ends[-1]["status"] == "done"
    if meta is not None and "evaluated" in meta:
        ended = bool(meta.get("finished")) and bool(meta["evaluated"])
    else:
        ended = done and (meta is None or bool(meta.get("finished")))
    if ended:
        raise TrainingError(f"{run_dir}: this run has finished; nothing to resume")
    if meta is None and any(e["kind"] == "checkpoint" for e in events):
        raise TrainingError(f"{run_dir}: no checkpoint to resume from (it was deleted after it was written)")


def check_model_source(config: TrainConfig) -> None:
    """A hub model while the hub is unreachable fails here in a few seconds (ModelError), before
    a run folder is made; a local folder costs nothing."""
    from workbench.core.model.loading import hub_options, resolve_model

    hub_options(config.model, resolve_model(config.model))


def check_data(config: TrainConfig, run_dir: Path | None = None, runs_dir: Path | None = None) -> RunData:
    """CONFIG's data, its splits drawn, its training split the rows the run trains on: those RUN_DIR recorded at
    its start when it did (a resume, the other processes of a run), else chosen now (RUNS_DIR: where a map's run
    name is looked up). DataError names the file and line of a bad data or overrides file, TrainingError says why
    a map cannot choose: a bad request fails before training."""
    from workbench.core.data.cola import load_cola

    cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
    recorded = recorded_training_rows(cola, run_dir) if run_dir is not None else None
    if recorded is not None:
        return RunData(cola.folder, {**cola.splits, "train": recorded})
    chosen = choose_training_rows(config, cola, runs_dir or (run_dir.parent if run_dir is not None else None))
    return RunData(cola.folder, {**cola.splits, "train": chosen.frame}, chosen)


def record_training_rows(run_dir: Path, data: RunData) -> None:
    """Keep in RUN_DIR which sentences a new run trains on, with the labels it trains with, and how they were
    chosen (core/runs/train_rows.py), with a copy of the overrides it applied: written before its config, so a
    run folder always has them."""
    if data.chosen is None:
        return
    if data.chosen.overrides_text is not None:
        write_bytes_atomic(run_dir / OVERRIDES_COPY, data.chosen.overrides_text.encode("utf-8"))
    write_train_rows(run_dir, data.chosen.frame, data.chosen.summary)


@dataclass
class PreparedData:
    """What the loop trains and validates on, made once from the run's data: the tokenizer, the training
    rows (as chosen: core/training/selection.py) and their labels, each row encoded (with its row number, for the
    map)."""

    tokenizer: Any
    train_labels: list[int]
    train_rows: list[dict[str, Any]]
    val_rows: list[dict[str, Any]]


def prepare_data(config: TrainConfig, data: RunData) -> PreparedData:
    """DATA's training rows (as check_data chose them) and validation sentences, tokenized by CONFIG.model's
    tokenizer."""
    from workbench.core.model.loading import load_tokenizer

    train_frame, val_frame = data["train"], data["validation"]
    tokenizer = load_tokenizer(config.model)
    labels = [int(label) for label in train_frame["label"]]
    train_rows = encode(tokenizer, train_frame["sentence"].tolist(), labels, config.max_length)
    for index, row in enumerate(train_rows):
        row["row"] = index  # the training row, for the map (core/runs/dynamics.py); not a model input
    val_rows = encode(tokenizer, val_frame["sentence"].tolist(), val_frame["label"].tolist(), config.max_length)
    return PreparedData(tokenizer, labels, train_rows, val_rows)


def encode(tokenizer: Any, sentences: list[str], labels: list[int] | None, max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer(sentences, truncation=True, max_length=max_length)
    rows = []
    for i in range(len(sentences)):
        row = {key: encoded[key][i] for key in encoded.keys()}
        if labels is not None:
            row["labels"] = int(labels[i])
        rows.append(row)
    return rows


def initial_model(config: TrainConfig, allow_pickle: bool = False) -> Any:
    """CONFIG's model as training starts: loaded (a fresh classifier head drawn from torch's global
    generator), then the recipe's dropout and re-initialised layers (core/training/recipe.py).

    Call it with the generator seeded with CONFIG.seed. With a head_seed of its own, the head is
    drawn from that seed and the generator is seeded with CONFIG.seed again afterwards, so members
    of a seed group with one head seed share the head's init and differ in everything else; without
    one, the draws are exactly those of runs made before the setting existed."""
    from accelerate.utils import set_seed

    from workbench.core.model.loading import load_model
    from workbench.core.training.recipe import apply_recipe

    if config.effective_head_seed != config.seed:
        set_seed(config.effective_head_seed)
        model = load_model(config.model, allow_pickle=allow_pickle)
        set_seed(config.seed)
    else:
        model = load_model(config.model, allow_pickle=allow_pickle)
    apply_recipe(model, config)
    return model
