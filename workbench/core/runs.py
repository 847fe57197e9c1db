"""Run folders: runs/<id>/ with config.json, metrics.jsonl, model/, checkpoint/, eval.json."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from workbench.core.events import EndEvent, EpochEvent, Event, StepEvent, of_kind, parse_event

if TYPE_CHECKING:
    from workbench.core.config import TrainConfig
    from workbench.core.data import CoLA

from workbench.core.durable import fsync_dir, fsync_tree

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


class RunLock:
    """An exclusive lock on a run folder, held while a process trains into it.

    The OS drops it when the process dies, so a crashed run never stays locked."""

    def __init__(self, folder: Path):
        from filelock import FileLock, Timeout

        self._timeout = Timeout
        self.folder = folder
        self._lock = FileLock(str(folder / ".lock"))

    def __enter__(self) -> RunLock:
        try:
            self._lock.acquire(timeout=0)
        except self._timeout:
            raise RunError(f"{self.folder}: another training is writing this run") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    @staticmethod
    def is_locked(folder: Path) -> bool:
        """Whether a training holds FOLDER's lock now. Asking creates nothing: a missing folder or
        lock file means that no training has it."""
        from filelock import FileLock, Timeout

        if not (folder / ".lock").is_file():
            return False
        lock = FileLock(str(folder / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False


class MetricsWriter:
    """Appends one JSON object per event to metrics.jsonl, flushed as it goes.

    Synced to the disk only at the events in SYNCED (a checkpoint, an epoch, the end), so a
    power cut loses at most the step lines since the last of them, which a resume writes
    again. Not at every step: an fsync costs milliseconds (a journal commit), as much as
    a whole training step of a small model on a GPU."""

    SYNCED = ("checkpoint", "epoch", "end")

    def __init__(self, path: Path):
        self.path = path
        self._handle = path.open("a", encoding="utf-8")
        self._folder_synced = False

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, default=str) + "\n")
        self._handle.flush()
        if record.get("kind") in self.SYNCED:
            self.sync()

    def sync(self) -> None:
        """Put every line written so far on the disk (before a checkpoint that they describe)."""
        os.fsync(self._handle.fileno())
        if not self._folder_synced:  # the file's own name in the run folder
            fsync_dir(self.path.parent)
            self._folder_synced = True

    def close(self) -> None:
        self._handle.close()


def read_metrics(folder: Path) -> list[Event]:
    """Every complete event of a run (a half-written last line is ignored)."""
    path = folder / "metrics.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [event for event in map(parse_event, lines) if event is not None]


def _tail_metrics(folder: Path, stop: Callable[[], bool], poll: float = 0.25) -> Iterator[list[Event]]:
    """The events of metrics.jsonl as another process appends them, a read at a time (the whole
    history first), until STOP() is true; what was written before STOP() turned true is still yielded."""
    path = folder / "metrics.jsonl"
    position = 0
    pending = ""
    while True:
        done = stop()
        if path.exists():
            with path.open("r", encoding="utf-8", errors="replace") as handle:
                handle.seek(position)
                chunk = handle.read()
                position = handle.tell()
            pending += chunk
            *complete, pending = pending.split("\n")
            batch = [event for event in map(parse_event, complete) if event is not None]
            if batch:
                yield batch
        if done:
            return
        time.sleep(poll)


def follow_run(run_dir: Path, cancelled: Callable[[], bool] = lambda: False,
               poll: float = 0.25) -> Iterator[list[Event]]:
    """Replay a run's events, then follow them live until the run ends, a batch per read (so a
    UI can take each in one message). Used by `workbench attach` and the TUI alike.

    The run has ended when no process holds its lock and its last `end` event has been read,
    or, for a process killed without one, after a quiet second. A training that holds the lock
    (perhaps resumed after an earlier end event) is followed on. CANCELLED() ends it early."""
    state = {"ended": False, "quiet_since": time.monotonic()}

    def finished() -> bool:
        if cancelled():
            return True
        if RunLock.is_locked(run_dir):
            return False
        return bool(state["ended"]) or time.monotonic() - float(state["quiet_since"]) > 1.0

    for batch in _tail_metrics(run_dir, finished, poll):
        state["quiet_since"] = time.monotonic()
        for event in batch:
            if event["kind"] == "end":
                state["ended"] = True
            elif event["kind"] == "start":
                state["ended"] = False
        yield batch


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)  # else a power cut can undo the rename


def fault_point(name: str) -> None:
    """Test hook for crash tests: with WORKBENCH_FAULT=NAME (or NAME@N, the Nth time) the process
    kills itself with SIGKILL here, as a power cut or the OOM killer would. Unset, it does nothing."""
    spec = os.environ.get("WORKBENCH_FAULT")
    if not spec:
        return
    wanted, _, nth = spec.partition("@")
    if wanted == name:
        _fault_counts[name] = _fault_counts.get(name, 0) + 1
        if _fault_counts[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


_fault_counts: dict[str, int] = {}


def replace_dir_atomic(staged: Path, target: Path) -> None:
    """Swap STAGED in as TARGET so that at every moment one whole copy exists:
    TARGET, or TARGET.old while the swap is under way (see `existing_dir`)."""
    old = target.with_name(f".{target.name}.old")
    fsync_tree(staged)  # every file on the disk before the renames make STAGED the copy to keep
    fsync_dir(target.parent)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
    # else an earlier swap was cut short and OLD may be the only whole copy: keep it until STAGED is in
    fault_point(f"swap:{target.name}")
    os.rename(staged, target)
    fsync_dir(target.parent)  # the renames on the disk before OLD, the previous copy, goes
    shutil.rmtree(old, ignore_errors=True)


def existing_dir(target: Path, marker: str) -> Path | None:
    """TARGET if whole (has MARKER), else the previous copy left by an interrupted swap."""
    for candidate in (target, target.with_name(f".{target.name}.old")):
        if (candidate / marker).is_file():
            return candidate
    return None


def recover_dir(target: Path, marker: str) -> None:
    """After a crash in the middle of a swap, put the previous whole copy back in place as TARGET."""
    old = target.with_name(f".{target.name}.old")
    if not (target / marker).is_file() and (old / marker).is_file():
        shutil.rmtree(target, ignore_errors=True)
        os.rename(old, target)


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


def run_info(folder: Path) -> RunInfo:
    config: dict[str, Any] = {}
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        pass
    events = read_metrics(folder)
    info = RunInfo(id=folder.name, path=folder, status="new", config=config,
                   epochs=int(config.get("epochs", 0)), model=str(config.get("model", "")))
    for event in events:
        if event["kind"] == "start":
            info.started = info.started or event["time"]
            info.status = "running"
        elif event["kind"] == "epoch":
            info.epochs_done = max(info.epochs_done, event["epoch"])
            mcc = event["val_mcc"]
            if info.best_val_mcc is None or mcc > info.best_val_mcc:
                info.best_val_mcc = float(mcc)
        elif event["kind"] == "end":
            info.status = event.get("status", "done")
            info.error = event.get("error") or ""
    if info.status == "running" and not RunLock.is_locked(folder):
        info.status = "failed"
        info.error = info.error or "the training process ended without a final event (killed?)"
    try:
        report = json.loads((folder / "eval.json").read_text(encoding="utf-8"))
        info.holdout_mcc = report.get("holdout", {}).get("mcc")
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
    folders = [p for p in runs_dir.iterdir() if p.is_dir() and (p / "config.json").is_file()]
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


def differing_settings(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The config keys whose values are not the same in all CONFIGS, sorted."""
    keys = sorted({key for config in configs for key in config})
    return [key for key in keys if len({json.dumps(c.get(key), sort_keys=True) for c in configs}) > 1]


def export_metrics_csv(folder: Path, out: TextIO) -> int:
    """Write every step and epoch event of a run as CSV rows to OUT; the number of rows."""
    events = [e for e in read_metrics(folder) if e["kind"] in ("step", "epoch")]
    if not events:
        raise RunError(f"{folder}: no metrics yet")
    columns: list[str] = []
    for event in events:
        columns += [k for k in event if k not in columns]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(events)
    return len(events)


# ---------------------------------------------------------------- the questions asked of a run


def model_folder(run_dir: Path) -> Path:
    """Where RUN_DIR's fine-tuned model is: its model/ (the best epoch), or RUN_DIR itself when it
    is a plain save_pretrained folder. RunError when it has none yet."""
    if (run_dir / "model" / "config.json").is_file():
        return run_dir / "model"
    if (run_dir / "config.json").is_file() and not (run_dir / "metrics.jsonl").exists():
        return run_dir  # a save_pretrained folder, not a run
    raise RunError(f"{run_dir}: no trained model yet (no model/ folder); train or resume it first")


@dataclass
class ModelSource:
    """What to load to classify sentences, and how to name it to the user."""

    source: str  # a folder or a model name for core.model.load_model
    label: str
    finetuned: bool


def model_source(run_dir: Path | None, base_model: str) -> ModelSource:
    """RUN_DIR's model when it has one, else BASE_MODEL (marked not fine-tuned unless it is a
    saved classifier)."""
    from workbench.core.model import is_finetuned

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
    from workbench.core.config import TrainConfig

    config = TrainConfig()
    if run_dir is not None and (run_dir / "config.json").is_file():
        config = TrainConfig.load(run_dir / "config.json")
    return DataSpec(data if data else config.data, config.validation_fraction, config.split_seed)


def load_run_data(run_dir: Path | None, data: str | None = None) -> CoLA:
    """The splits of RUN_DIR's data, split as in its training (see `run_data_spec`)."""
    from workbench.core.data import load_cola

    spec = run_data_spec(run_dir, data)
    return load_cola(spec.data or None, spec.validation_fraction, spec.split_seed)


@dataclass
class RunCurves:
    steps: list[StepEvent]
    epochs: list[EpochEvent]


def run_curves(run_dir: Path) -> RunCurves:
    events = read_metrics(run_dir)
    return RunCurves(of_kind(events, "step"), of_kind(events, "epoch"))


@dataclass
class RunComparison:
    """Runs side by side: the settings that differ, validation MCC per epoch, the scores."""

    runs: list[RunInfo]
    differing: list[str]
    curves: list[RunCurves]

    def rows(self) -> list[tuple[str, list[str]]]:
        """(label, one cell per run) for a table: differing settings, val MCC per epoch, scores."""
        rows = [(key, [str(info.config.get(key, "-")) for info in self.runs]) for key in self.differing]
        for epoch in range(max((len(c.epochs) for c in self.curves), default=0)):
            rows.append((f"val MCC epoch {epoch + 1}",
                         [f"{c.epochs[epoch]['val_mcc']:.3f}" if epoch < len(c.epochs) else "-" for c in self.curves]))
        for label, attr in (("best val MCC", "best_val_mcc"), ("holdout MCC", "holdout_mcc")):
            values = [getattr(info, attr) for info in self.runs]
            rows.append((label, [f"{v:.3f}" if v is not None else "-" for v in values]))
        return rows


def compare_runs(run_dirs: Sequence[Path]) -> RunComparison:
    for run_dir in run_dirs:
        if not (run_dir / "config.json").is_file():
            raise RunError(f"{run_dir}: no such run")
    infos = [run_info(run_dir) for run_dir in run_dirs]
    return RunComparison(infos, differing_settings([i.config for i in infos]), [run_curves(d) for d in run_dirs])


def last_end(events: Sequence[Event]) -> EndEvent | None:
    ends: list[EndEvent] = of_kind(events, "end")
    return ends[-1] if ends else None
