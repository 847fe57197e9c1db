"""A run's status (running, stopped, done, failed), stopping it, and starting it detached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.base.durable import write_json_atomic
from workbench.core.base.layout import CONFIG_FILE, SOUP_KEY, STOP_FILE, RunError, is_run_folder
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import read_metrics

if TYPE_CHECKING:
    from workbench.core.base.config import TrainConfig
    from workbench.core.base.events import Event


ENDED_UNANNOUNCED = "the training process ended without a final event (killed?)"


@dataclass
class RunInfo:
    id: str
    path: Path
    status: str  # running, stopped, done, failed, new
    started: str = ""
    epochs_done: int = 0
    epochs: int = 0
    best_val_mcc: float | None = None
    holdout_mcc: float | None = None
    model: str = ""
    error: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    soup_members: int = 0  # a soup (workbench soup): how many runs' weights it averages; it trained no epoch

    @property
    def epochs_text(self) -> str:
        """The epochs column of every face: done/planned, or soup×N for a soup of N runs."""
        return f"soup×{self.soup_members}" if self.soup_members else f"{self.epochs_done}/{self.epochs}"

    def summary(self) -> str:
        """The run's status in words, as every face says it (`workbench attach`, `runs`, the TUI)."""
        if self.status == "done":
            best = f", best validation MCC {self.best_val_mcc:.3f}" if self.best_val_mcc is not None else ""
            holdout = f", holdout MCC {self.holdout_mcc:.3f}" if self.holdout_mcc is not None else ""
            return f"done{best}{holdout}"
        if self.status == "stopped":
            return f"stopped after epoch {self.epochs_done}/{self.epochs}; its checkpoint resumes it"
        if self.status == "failed":
            return f"failed: {self.error or ENDED_UNANNOUNCED}"
        if self.status == "running":
            return f"running, epoch {self.epochs_done}/{self.epochs} done"
        return "not started"


def run_status(events: list[Event], locked: Callable[[], bool]) -> tuple[str, str]:
    """(status, error) of a run from its EVENTS: the last end event after the last start; a start
    with no end is running while a process holds the run's lock (LOCKED(), asked only then), else failed."""
    status, error = "new", ""
    for event in events:
        if event["kind"] == "start":
            status, error = "running", ""
        elif event["kind"] == "end":
            status, error = event.get("status", "done"), event.get("error") or ""
    if status == "running" and not locked():
        return "failed", ENDED_UNANNOUNCED
    return status, error


def run_info(folder: Path) -> RunInfo:
    config: dict[str, Any] = {}
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        pass
    events = read_metrics(folder)
    info = RunInfo(id=folder.name, path=folder, status="new", config=config,
                   epochs=int(config.get("epochs", 0)), model=str(config.get("model", "")))
    extra = config.get("extra")
    soup = extra.get(SOUP_KEY) if isinstance(extra, dict) else None
    if isinstance(soup, dict):
        info.soup_members = len(soup.get("kept") or soup.get("members") or []) or 1
        info.started = next((str(e["time"]) for e in events if e.get("time")), "")  # made, not trained
    for event in events:
        if event["kind"] == "start":
            info.started = info.started or event["time"]
        elif event["kind"] == "epoch":
            info.epochs_done = max(info.epochs_done, event["epoch"])
            mcc = event["val_mcc"]
            if info.best_val_mcc is None or mcc > info.best_val_mcc:
                info.best_val_mcc = float(mcc)
    info.status, info.error = run_status(events, lambda: RunLock.is_locked(folder))
    try:
        report = json.loads((folder / "eval.json").read_text(encoding="utf-8"))
        info.holdout_mcc = report.get("holdout", {}).get("mcc")
        if info.soup_members and info.best_val_mcc is None:  # no epoch: the soup's validation MCC at 0.5
            info.best_val_mcc = report.get("calibration", {}).get("mcc_at_half")
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    return info


def stop_run(folder: Path) -> None:
    """Ask whatever trains into FOLDER (a detached process, a TUI, any launcher's main
    process) to stop at its next batch; it saves a checkpoint first."""
    if not RunLock.is_locked(folder):
        raise RunError(f"{folder}: no training is running in this run")
    (folder / STOP_FILE).touch()


def list_runs(runs_dir: Path) -> list[RunInfo]:
    if not runs_dir.is_dir():
        return []
    folders = [p for p in runs_dir.iterdir() if is_run_folder(p)]
    return [run_info(p) for p in sorted(folders, key=lambda p: p.name)]


LAUNCH_FILE = ".launch.json"


def launch_training(config: TrainConfig | None, run_dir: Path, *, allow_pickle: bool = False,
                    timeout: float = 120.0) -> int:
    """Train CONFIG into RUN_DIR (or resume RUN_DIR when CONFIG is None) in its own process and
    session, so that it outlives the terminal and the SSH connection; output goes to RUN_DIR/train.log.
    The CLI's `train --detach` and the TUI's `D` both start trainings here.

    The config travels as JSON (`TrainConfig.to_dict`), never through command-line flags. Returns
    the process id once the training holds RUN_DIR's lock, or raises RunError if the process ended
    at once (the last line of its log says why)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = ["train", "--runs", str(run_dir.parent)]
    if config is None:
        argv += ["--resume", run_dir.name]
    else:
        write_json_atomic(run_dir / LAUNCH_FILE, config.to_dict())
        argv += ["--name", run_dir.name, "--launch-config", str(run_dir / LAUNCH_FILE)]
    if allow_pickle:
        argv.append("--allow-pickle")
    log_path = run_dir / "train.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "workbench.cli", *argv], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # wait until it holds the run, or fails early
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
            raise RunError(f"the detached training ended at once: {tail[0] if tail else 'no output'}")
        if RunLock.is_locked(run_dir):
            break
        time.sleep(0.1)
    return process.pid

