"""The sentences a run trains on, chosen once at its start: its data's training split, with the decisions of a
label-overrides file applied (core/data/overrides.py), then cut to the chosen regions of another run's training
map, then to train_limit. The choice is recorded in the run folder (core/runs/train_rows.py); a resume and the
run's other processes read it back instead of choosing again, so a changed overrides file or map cannot change
a run half way.

Of each chosen map region, `subset_fraction` keeps the region's most typical sentences first, each region by the
coordinate that defines it (Swayamdipta et al. 2020 train on the most ambiguous, easiest or hardest share, each
ordered so): ambiguous by variability, highest first; easy by confidence, highest first; hard by confidence,
lowest first; ties by line. The kept count is the share rounded up, so a chosen region that has sentences never
gives none."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.base.config import TrainConfig, default_runs_dir
from workbench.core.base.errors import TrainingError
from workbench.core.base.layout import CONFIG_FILE, RunError, is_run_folder
from workbench.core.data.cola import SPLIT_FILES
from workbench.core.runs.train_rows import (
    OVERRIDES_COPY,
    TRAIN_ROWS_FILE,
    MapSubset,
    OverridesApplied,
    TrainingData,
    read_train_rows,
)

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.data.cola import CoLA


@dataclass
class TrainingRows:
    """The rows a run trains on (FRAME, in training-row order, labels as trained) and how they were chosen."""

    frame: pd.DataFrame
    summary: TrainingData
    overrides_text: str | None = None  # the applied overrides, as the run folder's copy holds them


def training_file_name(data: CoLA) -> str:
    """The file whose line numbers the overrides and the map name: in_domain_train.tsv, or the user's file."""
    folder = Path(data.folder)
    return folder.name if folder.is_file() else SPLIT_FILES["in_domain_train"]


def choose_training_rows(config: TrainConfig, data: CoLA, runs_dir: Path | None = None) -> TrainingRows:
    """CONFIG's training rows from DATA's splits (the module's steps). DataError naming the overrides file and
    line for a bad decision; TrainingError for a map that cannot choose, or when nothing is left to train on.
    RUNS_DIR is where a map's run name is looked up (default: the runs folder)."""
    from workbench.core.data.overrides import apply_overrides, format_overrides, read_overrides

    split = data["train"]
    frame = split
    summary = TrainingData(split=len(split))
    overrides_text = None
    if config.overrides.strip():
        path = Path(config.overrides.strip()).expanduser()
        overrides = read_overrides(path)
        frame, counts = apply_overrides(frame, overrides, path, data["validation"], training_file_name(data))
        overrides_text = format_overrides(overrides)
        summary["overrides"] = OverridesApplied(
            file=str(path),
            copy=OVERRIDES_COPY,
            decisions=len(overrides),
            flipped=counts.flipped,
            dropped=counts.dropped,
            kept=counts.kept,
            in_validation=counts.in_validation,
        )
    if config.subset_map.strip():
        frame, summary["map"] = map_subset(config, data, frame, runs_dir)
    if config.train_limit:
        frame = frame.iloc[: config.train_limit]
        summary["train_limit"] = config.train_limit
    frame = frame.reset_index(drop=True)
    summary["trained"] = len(frame)
    if frame.empty:
        raise TrainingError(
            f"no training sentence is left of the {len(split)} of the training split after the overrides and the "
            "map's regions: keep more"
        )
    return TrainingRows(frame, summary, overrides_text)


def map_run(name: str, runs_dir: Path | None = None) -> Path:
    """The folder of the run whose map chooses the sentences: NAME as a run folder, else a run of RUNS_DIR."""
    from workbench.core.runs.lookup import existing_run

    path = Path(name).expanduser()
    if is_run_folder(path):
        return path
    try:
        folder = existing_run(runs_dir or default_runs_dir(), name)
    except RunError as err:
        raise TrainingError(f"--map: {err}") from None
    if not is_run_folder(folder):
        raise TrainingError(f"--map {name}: {folder} has not trained yet, so it has no map")
    return folder


def map_subset(
    config: TrainConfig, data: CoLA, frame: pd.DataFrame, runs_dir: Path | None = None
) -> tuple[pd.DataFrame, MapSubset]:
    """FRAME's rows (the training split, overrides applied) that CONFIG's map regions hold, by the sentence's
    line in the training file, with the count kept of each region."""
    import numpy as np

    from workbench.core.runs.dynamics import coordinates, read_dynamics, regions

    folder = map_run(config.subset_map.strip(), runs_dir)
    rows = _map_rows(folder, config, data)
    try:
        dynamics = read_dynamics(folder)
    except RunError as err:
        raise TrainingError(f"--map: {err}") from None
    if len(dynamics.labels) != len(rows) or not (dynamics.labels == rows["label"].to_numpy()).all():
        raise TrainingError(
            f"--map {folder}: its map was recorded on {len(dynamics.labels)} training sentences that its data no "
            f"longer gives ({len(rows)} now, or other labels); map another run"
        )
    confidence, variability, _, _ = coordinates(dynamics.p_gold)
    region = regions(confidence, variability)
    lines = rows["line"].to_numpy()
    order_by = {"ambiguous": -variability, "easy": -confidence, "hard": confidence}
    chosen: dict[str, set[int]] = {}
    for name in config.region_names:
        members = np.flatnonzero(region == name)
        ordered = members[np.lexsort((lines[members], order_by[name][members]))]
        keep = math.ceil(config.subset_fraction * len(ordered) - 1e-9)
        chosen[name] = {int(line) for line in lines[ordered[:keep]]}
    frame_lines = [int(line) for line in frame["line"].tolist()]
    wanted = set().union(*chosen.values())
    subset = frame[[line in wanted for line in frame_lines]]
    selected = {name: sum(1 for line in subset["line"].tolist() if int(line) in chosen[name]) for name in chosen}
    return subset, MapSubset(
        run=str(folder.resolve()), regions=list(config.region_names), fraction=config.subset_fraction, selected=selected
    )


def _map_rows(folder: Path, config: TrainConfig, data: CoLA) -> pd.DataFrame:
    """The map run's training rows (line, label, sentence) in its map's order, checked line by line against DATA
    (the training file of this run): its recorded rows, else (a run from before they were recorded) its
    split of this run's data, which must then be drawn as this run's is."""
    import pandas as pd

    recorded = read_train_rows(folder)
    if recorded is None:
        other = TrainConfig.load(folder / CONFIG_FILE)
        if (other.validation_fraction, other.split_seed) != (config.validation_fraction, config.split_seed):
            raise TrainingError(
                f"--map {folder}: its map is of another split (validation fraction {other.validation_fraction}, "
                f"split seed {other.split_seed}; this run: {config.validation_fraction}, {config.split_seed}) and "
                "the run did not record its rows; train with its split, or map a run of this one"
            )
        recorded = data["train"].iloc[: other.train_limit] if other.train_limit else data["train"]
    whole = pd.concat([data["train"], data["validation"]])
    by_line = dict(zip(whole["line"].tolist(), whole["sentence"].tolist(), strict=True))
    for line, sentence in zip(recorded["line"].tolist(), recorded["sentence"].tolist(), strict=True):
        if by_line.get(int(line)) != sentence:
            raise TrainingError(
                f"--map {folder}: its map's line {line} is {sentence!r}, which is not line {line} of "
                f"{training_file_name(data)} here: the map was drawn on other data"
            )
    return recorded.reset_index(drop=True)


def recorded_training_rows(data: CoLA, run_dir: Path) -> pd.DataFrame | None:
    """The rows RUN_DIR recorded at its start (train_rows.tsv), checked against DATA: each line there, with the
    same sentence. None when it recorded none. TrainingError when the data changed since."""
    import pandas as pd

    recorded = read_train_rows(run_dir)
    if recorded is None:
        return None
    whole = pd.concat([data["train"], data["validation"]])
    by_line = dict(zip(whole["line"].tolist(), whole["sentence"].tolist(), strict=True))
    for line, sentence in zip(recorded["line"].tolist(), recorded["sentence"].tolist(), strict=True):
        if by_line.get(int(line)) != sentence:
            raise TrainingError(
                f"{run_dir / TRAIN_ROWS_FILE}: line {line} ({sentence!r}) is not in {training_file_name(data)} "
                "as the run started with it: the data changed since; train a new run"
            )
    return recorded[["source", "label", "sentence", "line"]].assign(mark="")[
        ["source", "label", "mark", "sentence", "line"]
    ]
