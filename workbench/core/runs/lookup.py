"""The questions asked of a run: what model to load and which data and split it trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.base.layout import CONFIG_FILE, RunError, is_run_folder, model_folder

if TYPE_CHECKING:
    from workbench.core.data.cola import CoLA


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

