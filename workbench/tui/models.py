"""The models and data the panes classify with, for workers: core `model_source` and
`load_run_data` answer which; this keeps one loaded `Predictor` per model file."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.runs.lookup import ModelSource
from workbench.tui.messages import StatusChanged


class Models:
    """Thread-safe: workers call it (a first call for a model loads it)."""

    def __init__(self, base_model: str, data: str) -> None:
        self.base_model = base_model
        self.data = data
        self._predictors: dict[str, tuple[Any, str, bool]] = {}
        self._lock = threading.Lock()

    def source(self, run_dir: Path | None) -> ModelSource:
        """RUN_DIR's model (core `model_source`), or the base model without a run."""
        from workbench.core.runs.lookup import model_source

        return model_source(run_dir, self.base_model)

    def predictor(self, run_dir: Path | None, on_status: Callable[[Any], Any] | None = None) -> tuple[Any, str, bool]:
        """(a cached `Predictor`, its label, fine-tuned or not); a new best epoch (a newer file) reloads."""
        from workbench.core.model.loading import model_version

        source = self.source(run_dir)
        key = model_version(source.source)
        with self._lock:
            if key not in self._predictors:
                if on_status is not None:
                    on_status(StatusChanged(f"loading model {source.label}…"))
                from workbench.core.model.loading import quiet_transformers
                from workbench.core.model.predict import Predictor

                quiet_transformers()
                self._predictors[key] = (Predictor.load(source.source), source.label, source.finetuned)
            return self._predictors[key]

    def data_for(self, run_dir: Path | None) -> Any:
        """RUN_DIR's data, split as in its training (core `load_run_data`); the app's data without a run."""
        from workbench.core.runs.lookup import load_run_data

        return load_run_data(run_dir, None if run_dir else (self.data or None))
