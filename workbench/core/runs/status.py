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
from typing import TYPE_CHECKING, Any, Protocol

from workbench.core.base.durable import write_json_atomic
from workbench.core.base.layout import (
    CONFIG_FILE,
    METRICS_FILE,
    PID_FILE,
    SOUP_KEY,
    STOP_FILE,
    RunError,
    is_run_folder,
)
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import read_metrics
from workbench.core.runs.train_rows import read_training_data, training_data_text

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
    trained_on: str = ""  # how its sentences were chosen (overrides, map regions), '' for its whole training split

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
    info = RunInfo(
        id=folder.name,
        path=folder,
        status="new",
        config=config,
        epochs=int(config.get("epochs", 0)),
        model=str(config.get("model", "")),
    )
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
    info.trained_on = training_data_text(read_training_data(folder))
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


def running_runs(runs_dir: Path) -> list[str]:
    """The runs training now (a process holds their lock), the most recently started last. Cheap: one
    lock probe per folder that has a lock file, no metrics read (the app asks as it starts)."""
    if not runs_dir.is_dir():
        return []
    found = []
    for folder in runs_dir.iterdir():
        if (folder / ".lock").is_file() and RunLock.is_locked(folder):
            pid_file = folder / PID_FILE
            started = pid_file.stat().st_mtime if pid_file.exists() else 0.0
            found.append((started, folder.name))
    return [name for _, name in sorted(found)]


def list_runs(runs_dir: Path) -> list[RunInfo]:
    if not runs_dir.is_dir():
        return []
    folders = [p for p in runs_dir.iterdir() if is_run_folder(p)]
    return [run_info(p) for p in sorted(folders, key=lambda p: p.name)]


LAUNCH_FILE = ".launch.json"


def visible_gpus() -> int:
    """How many NVIDIA GPUs a training started now would see (CUDA_VISIBLE_DEVICES, else the driver's
    list), read without importing torch: the app asks before every start."""
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return len([d for d in chosen.split(",") if d.strip() and not d.strip().startswith("-")])
    driver = Path("/proc/driver/nvidia/gpus")
    return len(list(driver.iterdir())) if driver.is_dir() else 0


def training_command(argv: list[str], processes: int = 1) -> list[str]:
    """The command that runs `workbench ARGV`: this Python on the CLI for one process, Accelerate's
    launcher (data-parallel, one process per GPU) for several."""
    if processes > 1:
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "-m",
            "workbench.cli",
            *argv,
        ]
    return [sys.executable, "-m", "workbench.cli", *argv]


class Spawn(Protocol):
    """Starts ARGV (the CLI's arguments) as a process writing to LOG; what `launch_training` waits on."""

    def __call__(self, argv: list[str], log: Path, processes: int) -> Any: ...


def spawn_detached(argv: list[str], log: Path, processes: int = 1) -> subprocess.Popen[bytes]:
    """`workbench ARGV` in its own process and session (no terminal: a hang-up never reaches it),
    its output appended to LOG."""
    with log.open("ab") as out:
        return subprocess.Popen(
            training_command(argv, processes),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def launch_training(
    config: TrainConfig | None,
    run_dir: Path,
    *,
    allow_pickle: bool = False,
    timeout: float = 120.0,
    processes: int = 1,
    spawn: Spawn | None = None,
) -> int:
    """Train CONFIG into RUN_DIR (or resume RUN_DIR when CONFIG is None) in its own process and
    session, so that it outlives the terminal and the SSH connection; output goes to RUN_DIR/train.log.
    Every start goes through here: the CLI's `train --detach` and every start and resume in the app.
    PROCESSES > 1 trains data-parallel under Accelerate's launcher, one process per GPU.

    The config travels as JSON (`TrainConfig.to_dict`), never through command-line flags. Returns
    the process id once the training holds RUN_DIR's lock, or raises RunError if the process ended
    at once (the last line of its log says why). SPAWN starts the process (tests start it warm)."""
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
    metrics = run_dir / METRICS_FILE
    written_before = metrics.stat().st_size if metrics.exists() else 0
    process = (spawn or spawn_detached)(argv, log_path, processes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # wait until it holds the run, or fails early
        if process.poll() is not None:
            if metrics.exists() and metrics.stat().st_size > written_before:
                break  # it trained (a quick one has already ended): its events say how
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] if log_path.exists() else []
            raise RunError(f"the training ended at once: {tail[0] if tail else 'no output'} (log: {log_path})")
        if RunLock.is_locked(run_dir):
            break
        time.sleep(0.1)
    return int(process.pid)
