"""Where things are in a run folder: run names, runs/<id>/ paths, the files a run keeps, its model."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from workbench.core.base.durable import fsync_dir

PID_FILE = "train.pid"
STOP_FILE = "stop.request"
CONFIG_FILE = "config.json"  # a run's TrainConfig (and, in a save_pretrained folder, the model's config)
METRICS_FILE = "metrics.jsonl"
MODEL_DIR = "model"  # a run's best model, a save_pretrained folder
SOUP_KEY = "soup"  # a soup run's TrainConfig.extra[SOUP_KEY]: its members and how they were chosen
# what a save_pretrained folder keeps its weights in; a run keeps none at its top (they are in model/)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunError(Exception):
    """A run folder that cannot be used (bad name, locked, unwritable, missing)."""


def check_run_name(name: str) -> str:
    if not RUN_NAME.fullmatch(name) or ".." in name:  # fullmatch: `$` alone lets a trailing newline through
        raise RunError(f"run name {name!r}: use letters, digits, '.', '_' or '-' (no path separators or '..')")
    return name


def new_run_id(runs_dir: Path) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = stamp, 1
    while (runs_dir / candidate).exists():
        n += 1
        candidate = f"{stamp}-{n}"
    return candidate


def is_run_folder(path: Path) -> bool:
    """PATH is a run's folder: a config.json (the run's TrainConfig) beside the run's own files. A
    save_pretrained folder has a config.json too, but beside weight files and without metrics.jsonl."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        return False
    if (path / METRICS_FILE).exists() or (path / MODEL_DIR).is_dir():
        return True
    try:
        return not any(child.name.endswith(WEIGHT_SUFFIXES) for child in path.iterdir())
    except OSError:
        return False


def run_path(runs_dir: Path, name: str) -> Path:
    """The folder of run NAME inside RUNS_DIR. An existing run in RUNS_DIR is found by its folder's
    name as it is; a path to an existing run folder or a saved model (eval and predict take both) is
    accepted too; any other NAME must be a valid new run name (RunError)."""
    runs_dir = Path(runs_dir)
    if name not in ("", ".", "..") and Path(name).name == name and is_run_folder(runs_dir / name):
        return runs_dir / name
    direct = Path(name)
    if (direct / CONFIG_FILE).is_file():  # a run folder, or a save_pretrained folder
        return direct
    return runs_dir / check_run_name(name)


def check_writable(folder: Path) -> None:
    """Fail before training if FOLDER cannot take files (permissions, full disk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        with probe.open("wb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
        fsync_dir(folder.parent)  # the run folder's own name survives a power cut
    except OSError as err:
        raise RunError(f"{folder}: cannot write here ({err.strerror or err})") from None
    free = shutil.disk_usage(folder).free
    if free < 512 * 1024 * 1024:
        raise RunError(f"{folder}: only {free // (1024 * 1024)} MiB free; a run needs about 512 MiB")


# ---------------------------------------------------------------- the questions asked of a run


def model_folder(run_dir: Path) -> Path:
    """Where RUN_DIR's fine-tuned model is: its model/ (the best epoch), or RUN_DIR itself when it
    is a plain save_pretrained folder. RunError when it has none yet."""
    run_dir = Path(run_dir)
    if (run_dir / MODEL_DIR / CONFIG_FILE).is_file():
        return run_dir / MODEL_DIR
    if (run_dir / CONFIG_FILE).is_file() and not is_run_folder(run_dir):
        return run_dir  # a save_pretrained folder, not a run
    raise RunError(f"{run_dir}: no trained model yet (no model/ folder); train or resume it first")


def run_of_model(model_dir: Path) -> Path | None:
    """The run folder whose model MODEL_DIR is (its model/), or None for a model of no run (a
    save_pretrained folder, a hub name): the run whose data, split and records go with the model."""
    model_dir = Path(model_dir)
    if model_dir.name == MODEL_DIR and is_run_folder(model_dir.parent):
        return model_dir.parent
    return None
