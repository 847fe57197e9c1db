"""Which data an evaluation scores, under which name, and whether (and where) it is recorded.

One answer for `workbench eval` and the TUI's Evaluate pane alike. A run's own splits keep their
names (holdout, in_domain_dev, validation, train); anything else gets a name no built-in split and no
calibration record can have: `file:<stem>` for a `--data` file, `data:<folder>:<split>` for the split
of another CoLA folder. The path scored is recorded beside the figures, and `record_report` refuses
to replace an entry that was scored on another path, so no recorded result is ever replaced by
another dataset's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FILE_PREFIX = "file:"
FOLDER_PREFIX = "data:"


@dataclass
class ScoredData:
    """The sentences an evaluation scores and the name it is recorded under."""

    name: str  # eval.json's key
    frame: pd.DataFrame
    data: str  # the file or folder scored when it is not the run's own data ("" for the run's own)


def data_file_name(data: str | Path | None) -> str | None:
    """The dataset name of a `--data` FILE (`file:<stem>`); None when DATA is not a file."""
    if not data or not Path(data).is_file():
        return None
    return FILE_PREFIX + Path(data).stem


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def scored_data(run_dir: Path | None, data: str | Path | None, split: str) -> ScoredData:
    """What `eval` scores: SPLIT of RUN_DIR's data, split as in its training; with DATA (`--data`), the
    whole of a file (named `file:<stem>`) or SPLIT of another folder (named `data:<folder>:<split>`),
    still split with the run's settings. DATA that is the run's own data is the run's own split."""
    from workbench.core.data.cola import project_data_dir
    from workbench.core.runs.lookup import load_run_data, run_data_spec

    if data:
        own = run_data_spec(run_dir).data if run_dir is not None else ""
        if _same_path(Path(data), Path(own) if own else project_data_dir()):
            data = None
    if not data:
        return ScoredData(split, load_run_data(run_dir, None)[split], "")
    cola = load_run_data(run_dir, str(data))
    path = Path(data)
    source = str(path.resolve())
    if path.is_file():
        return ScoredData(FILE_PREFIX + path.stem, cola["holdout"], source)
    return ScoredData(f"{FOLDER_PREFIX}{path.resolve().name}:{split}", cola[split], source)


def recording_folder(model_dir: Path | str) -> Path | None:
    """The run folder that records evaluations of the model in MODEL_DIR: the run whose model/ it is.
    None for anything else (a base model, a plain save_pretrained folder): nothing is recorded."""
    from workbench.core.base.layout import CONFIG_FILE, run_of_model

    model_dir = Path(model_dir)
    run_dir = run_of_model(model_dir)
    return run_dir if run_dir is not None and (model_dir / CONFIG_FILE).is_file() else None
