"""What the panes work on, apart from the screen: the runs folder, the opened run, the base model and data,
the models loaded for them, the label-overrides file the review writes, and how a training is started. The app
holds one; a pane reaches it as `self.session` (a small typed object, not the whole app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.base.layout import run_path
from workbench.tui.models import Models

if TYPE_CHECKING:
    from workbench.core.base.config import TrainConfig
    from workbench.core.runs.lookup import ModelSource

OVERRIDES_FILE = "label-overrides.tsv"  # the review's decisions, in the runs folder unless --overrides names one


@dataclass
class Session:
    """The opened run (None: the base model), within RUNS_DIR; MODEL and DATA as the app was started with;
    OVERRIDES: the label-overrides file given (None: OVERRIDES_FILE in the runs folder)."""

    model: str
    data: str
    runs_dir: Path
    current_run: str | None = None
    launcher: Callable[..., int] | None = None  # core launch_training unless given (tests start the process warm)
    overrides: Path | None = None
    models: Models = field(init=False)

    def __post_init__(self) -> None:
        self.models = Models(self.model, self.data)

    @property
    def overrides_file(self) -> Path:
        """Where the review of labels writes its decisions (core/data/overrides.py), and a training reads them."""
        return self.overrides if self.overrides is not None else self.runs_dir / OVERRIDES_FILE

    def run_dir(self, run_id: str | None) -> Path | None:
        return run_path(self.runs_dir, run_id) if run_id else None

    def model_source(self, run_id: str | None) -> ModelSource:
        return self.models.source(self.run_dir(run_id))

    def get_predictor(self, run_id: str | None, on_status: Callable[[Any], Any] | None = None) -> tuple[Any, str, bool]:
        """RUN_ID's Predictor (loaded once, thread-safe: for workers), its label, whether it is fine-tuned."""
        return self.models.predictor(self.run_dir(run_id), on_status)

    def data_for(self, run_id: str | None) -> Any:
        """RUN_ID's data, split as in its training (the app's data without a run)."""
        return self.models.data_for(self.run_dir(run_id))

    def initial_config(self) -> TrainConfig:
        from workbench.core.base.config import TrainConfig

        return TrainConfig(model=self.model, data=self.data)

    def launch_training(self, config: TrainConfig | None, run_dir: Path) -> int:
        """Start CONFIG into RUN_DIR (None: resume it) as its own process (core `launch_training`, one
        process per GPU when there are several); its pid once it holds the run."""
        from workbench.core.runs.status import launch_training, visible_gpus

        launcher = self.launcher or launch_training
        return launcher(config, run_dir, processes=max(1, visible_gpus()))
