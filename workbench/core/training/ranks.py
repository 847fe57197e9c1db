"""Several processes training together (torchrun, accelerate launch): none waits for ever on a failed one.

A process that fails where the others can still hear it, in its forward pass (no gradient
all-reduce is under way yet), says so in the small all-reduce that every step makes anyway
(`agree_on_step`: [loss, failed]); every process then learns the failing one's message and
stops with it. A failure anywhere else (backward, a validation, a checkpoint) leaves the
others inside a collective that will never complete: the failing process leaves its message
on the launcher's key-value store (`FailureBoard.post`) before it exits, and a thread in every
other process (`FailureBoard.watch`) reads it there, so that they stop within a second or two
saying "process R failed: ...", whatever the backend (gloo notices a dead peer, NCCL waits).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_trainings = itertools.count()  # every process counts its trainings alike: one board key per training


@dataclass
class Agreement:
    """What all processes agreed on after a forward pass."""

    mean_loss: float  # over the processes (NaN when one failed)
    failed_rank: int | None = None  # the lowest rank whose forward pass failed
    message: str = ""  # its error
    stop: bool = False  # some process was asked to stop: all stop before this step's backward
    checkpoint: bool = False  # some process (the main one, by its clock) calls for a checkpoint after this step


def agree_on_step(
    accelerator: Any, loss: Any, failure: str | None, stop: bool = False, checkpoint: bool = False
) -> Agreement:
    """One all-reduce of [loss, failed, stop, checkpoint] across the processes; when any failed, the
    failing process's message (FAILURE on that process, None elsewhere) is sent to all.

    LOSS is this process's loss tensor (None when its forward pass failed); STOP, whether this
    process was asked to stop; CHECKPOINT, whether it calls for a checkpoint after this step (the
    main process's clock: checkpoint_minutes). Both ride on the same all-reduce: no collective of
    their own each step. Every process must call this at every step, failed or not, so that no
    one waits alone."""
    import torch

    failed = failure is not None
    own = loss.detach().float().reshape(()) if loss is not None else torch.tensor(float("nan"))
    flags = torch.stack(
        [
            own.to(accelerator.device),
            torch.tensor(float(failed), device=accelerator.device),
            torch.tensor(float(stop), device=accelerator.device),
            torch.tensor(float(checkpoint), device=accelerator.device),
        ]
    )
    total_loss, failures, stops, checkpoints = accelerator.reduce(flags, reduction="sum").tolist()
    if not failures:
        return Agreement(mean_loss=total_loss / accelerator.num_processes, stop=stops > 0, checkpoint=checkpoints > 0)
    import torch.distributed as dist

    messages: list[Any] = [None] * accelerator.num_processes
    dist.all_gather_object(messages, failure)
    rank = next(r for r, m in enumerate(messages) if m is not None)
    return Agreement(mean_loss=float("nan"), failed_rank=rank, message=str(messages[rank]))


def agree_on_stop(accelerator: Any, stop: threading.Event) -> bool:
    """Whether any process's STOP is set (a collective with several processes); the agreed answer is set in
    STOP too. The answer, not the flag: a signal arriving after the reduce waits for the next agreement."""
    if accelerator.num_processes == 1:
        return stop.is_set()
    import torch

    flag = torch.tensor([1.0 if stop.is_set() else 0.0], device=accelerator.device)
    agreed = float(accelerator.reduce(flag, reduction="sum").item()) > 0
    if agreed:
        stop.set()
    return agreed


def main_failure(failure: BaseException | None) -> str | None:
    """The main process's FAILURE before training (its checks of the run folder), told to every
    process: None when it has none. A broadcast from process 0 that all processes call."""
    import torch.distributed as dist

    said: list[Any] = [None if failure is None else str(failure)]
    dist.broadcast_object_list(said, src=0)
    return None if said[0] is None else str(said[0])


class FailureBoard:
    """The launcher's key-value store (c10d), where a failing process leaves its last words for the others."""

    def __init__(self, rank: int, store: Any = None):
        self.rank = rank
        self.key = f"workbench/failed/{next(_trainings)}"
        self.store = store if store is not None else _default_store()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def post(self, message: str) -> None:
        """Leave MESSAGE as this process's failure (before the process exits)."""
        if self.store is None:
            return
        try:
            self.store.set(self.key, f"{self.rank}\n{message}")
        except Exception:  # the store went with a dead launcher: nobody is left to tell
            pass

    def read(self) -> tuple[int, str] | None:
        """(rank, message) of a failure posted by another process, if any."""
        if self.store is None:
            return None
        try:
            if not self.store.check([self.key]):
                return None
            rank, _, message = self.store.get(self.key).decode("utf-8", "replace").partition("\n")
        except Exception:  # a store that no longer answers has nothing to say
            return None
        return None if int(rank) == self.rank else (int(rank), message)

    def watch(self, on_failure: Callable[[int, str], None], interval: float = 0.5) -> None:
        """Call ON_FAILURE(rank, message) from a thread once another process posts a failure."""

        def poll() -> None:
            while not self._stop.wait(interval):
                found = self.read()
                if found is not None:
                    on_failure(*found)
                    return

        self._thread = threading.Thread(target=poll, name="workbench-failure-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def _default_store() -> Any:
    """The default process group's store, or None (no process group, or a torch without one)."""
    try:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            return None
        return dist.distributed_c10d._get_default_store()
    except Exception:
        return None
