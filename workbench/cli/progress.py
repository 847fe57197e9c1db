"""Showing a training as it goes (`train`, `attach`, `sweep`): a progress bar on a terminal, plain
lines when piped, and Ctrl-C that stops at the next batch instead of killing the process."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.core.base.events import Event, StartEvent, StepEvent


class Progress:
    """A tqdm bar on a terminal, plain lines when piped."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar: Any = None
        self.every = 50

    def __call__(self, event: Event) -> None:
        if event["kind"] == "start":
            self._start(event)
        elif event["kind"] == "step":
            self._step(event)
        elif event["kind"] == "epoch":
            self.close()
            mark = "  (best)" if event["best"] else ""
            self._line(
                f"epoch {event['epoch']}: train loss {event['train_loss']:.4f}  val loss "
                f"{event['val_loss']:.4f}  val acc {event['val_accuracy']:.3f}  val MCC "
                f"{event['val_mcc']:.3f}{mark}"
            )
        elif event["kind"] == "stage":
            self.close()
            count = f" ({event['sentences']:,} sentences)" if event["sentences"] else ""
            self._line(f"finishing {event['index']}/{event['stages']}: {event['stage']}{count}")
        elif event["kind"] == "log":
            self._line(event["message"])
        elif event["kind"] == "end":
            self.close()

    def _start(self, event: StartEvent) -> None:
        resumed = f", resumed at step {event['resumed_at_step']}" if event.get("resumed_at_step") else ""
        self._line(
            f"training {event['model']} on {event['device']} ({event['precision']}), "
            f"{event['train_sentences']} sentences, {event['epochs']} epochs x "
            f"{event['steps_per_epoch']} steps{resumed}"
        )
        self.every = max(1, event["steps_per_epoch"] // 10)

    def _step(self, event: StepEvent) -> None:
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=event["steps_per_epoch"],
                    initial=event["epoch_step"] - 1,
                    desc=f"epoch {event['epoch']}",
                    file=self.stream,
                    leave=False,
                    dynamic_ncols=True,
                )
            self.bar.update(1)
            self.bar.set_postfix_str(
                f"loss {event['loss']:.4f} lr {event['lr']:.2e} "
                f"{event['sentences_per_s']:.0f} sent/s ETA {_clock(event['eta_s'])}",
                refresh=False,
            )
        elif event["epoch_step"] % self.every == 0 or event["epoch_step"] == event["steps_per_epoch"]:
            self._line(
                f"epoch {event['epoch']} step {event['epoch_step']}/{event['steps_per_epoch']}  "
                f"loss {event['loss']:.4f}  lr {event['lr']:.2e}  "
                f"{event['sentences_per_s']:.0f} sent/s  ETA {_clock(event['eta_s'])}"
            )

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextmanager
def interruptible(stop: threading.Event, what: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) sets STOP once; a second Ctrl-C abandons at once."""
    presses = {"count": 0}

    def on_signal(signum: int, frame: Any) -> None:
        presses["count"] += 1
        if presses["count"] > 1:
            raise KeyboardInterrupt
        stop.set()
        print(
            f"\nstopping {what} at the next batch, saving a checkpoint (Ctrl-C again to abandon it)",
            file=sys.stderr,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, on_signal)
    previous_term = signal.signal(signal.SIGTERM, on_signal) if hasattr(signal, "SIGTERM") else None
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
