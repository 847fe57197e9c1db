"""The questions asked of a run: is there such a run, what model to load and which data and split it
trained on."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.base.layout import CONFIG_FILE, RunError, is_run_folder, model_folder, run_path

if TYPE_CHECKING:
    from workbench.core.data.cola import CoLA


LISTED_RUNS = 12  # an unknown run's error names at most this many of the folder's runs


def run_names(runs_dir: Path) -> list[str]:
    """The names of the runs in RUNS_DIR, sorted (timestamped ids: oldest first)."""
    try:
        return sorted(child.name for child in Path(runs_dir).iterdir() if is_run_folder(child))
    except OSError:  # no such folder, or unreadable: no runs to name
        return []


def unknown_run(runs_dir: Path, name: str) -> RunError:
    """The error for a run NAME that RUNS_DIR does not have: the runs it has (the newest when there are
    many), and the closest name when one is close."""
    names = run_names(runs_dir)
    if not names:
        return RunError(f"no run {name!r} in {runs_dir}: it has no runs yet (train one, or pass --runs FOLDER)")
    close = difflib.get_close_matches(name, names, n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    shown = names[-LISTED_RUNS:]
    more = f", and {len(names) - len(shown)} older (workbench runs lists them all)" if len(shown) < len(names) else ""
    return RunError(f"no run {name!r} in {runs_dir}{guess}; its runs: {', '.join(shown)}{more}")


def existing_run(runs_dir: Path, name: str) -> Path:
    """The folder of the existing run NAME: an id in RUNS_DIR (its folder, though the run may not have
    trained yet), or a path to a run folder or a saved model (`run_path`). Any other NAME is an unknown run:
    a RunError that lists the runs of RUNS_DIR. Every command that takes a run name asks here."""
    try:
        folder = run_path(runs_dir, name)
    except RunError:  # not a valid run name, nor the path of a run or a model
        raise unknown_run(runs_dir, name) from None
    if not folder.is_dir():
        raise unknown_run(runs_dir, name)
    return folder


@dataclass
class ModelSource:
    """What to load to classify sentences, and how to name it to the user."""

    source: str  # a folder or a model name for core.model.load_model
    label: str
    finetuned: bool


def model_source(run_dir: Path | None, base_model: str) -> ModelSource:
    """RUN_DIR's model when it has one, else BASE_MODEL (marked not fine-tuned unless it is a
    saved classifier)."""
    from workbench.core.model.loading import is_finetuned

    if run_dir is not None:
        try:
            return ModelSource(str(model_folder(run_dir)), f"run {run_dir.name}", True)
        except RunError:
            return ModelSource(base_model, f"{base_model} (run {run_dir.name} has no saved model yet)", False)
    return ModelSource(base_model, base_model, is_finetuned(Path(base_model)))


@dataclass
class DataSpec:
    """The data and split a run trained on: scoring it on anything else would misname "validation"."""

    data: str  # "" for the bundled CoLA
    validation_fraction: float
    split_seed: int


def run_data_spec(run_dir: Path | None, data: str | None = None) -> DataSpec:
    """The data folder and split recorded in RUN_DIR's config.json (defaults without a run);
    DATA, when given (`--data`), replaces the data but keeps the run's split settings."""
    from workbench.core.base.config import TrainConfig

    config = TrainConfig()
    if run_dir is not None and is_run_folder(run_dir):
        config = TrainConfig.load(run_dir / CONFIG_FILE)
    return DataSpec(data if data else config.data, config.validation_fraction, config.split_seed)


def load_run_data(run_dir: Path | None, data: str | None = None) -> CoLA:
    """The splits of RUN_DIR's data, split as in its training (see `run_data_spec`)."""
    from workbench.core.data.cola import load_cola

    spec = run_data_spec(run_dir, data)
    return load_cola(spec.data or None, spec.validation_fraction, spec.split_seed)
