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


def run_path(runs_dir: Path, name: str) -> Path:
    """The folder of run NAME inside RUNS_DIR; a path to an existing run folder is accepted too."""
    direct = Path(name)
    if direct.is_dir() and (direct / "config.json").is_file():
        return direct
    return Path(runs_dir) / check_run_name(name)


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
    if (run_dir / "model" / "config.json").is_file():
        return run_dir / "model"
    if (run_dir / "config.json").is_file() and not (run_dir / "metrics.jsonl").exists():
        return run_dir  # a save_pretrained folder, not a run
    raise RunError(f"{run_dir}: no trained model yet (no model/ folder); train or resume it first")

