"""metrics.jsonl: writing it, reading it back, following it while a run trains, exporting it."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from workbench.core.base.durable import fsync_dir
from workbench.core.base.events import EndEvent, EpochEvent, Event, StepEvent, of_kind, parse_event
from workbench.core.base.layout import RunError
from workbench.core.runs.lock import RunLock


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


def follow_run(
    run_dir: Path, cancelled: Callable[[], bool] = lambda: False, poll: float = 0.25
) -> Iterator[list[Event]]:
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


@dataclass
class RunCurves:
    steps: list[StepEvent]
    epochs: list[EpochEvent]


def run_curves(run_dir: Path) -> RunCurves:
    events = read_metrics(run_dir)
    return RunCurves(of_kind(events, "step"), of_kind(events, "epoch"))


def last_end(events: Sequence[Event]) -> EndEvent | None:
    ends: list[EndEvent] = of_kind(events, "end")
    return ends[-1] if ends else None
