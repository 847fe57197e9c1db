"""What a training reports: a small set of typed records, one per kind.

Each event is a plain dict at run time (it is one line of metrics.jsonl, and another process
may read it back), typed with a `TypedDict` per kind so that the CLI, the TUI, `attach` and
`export` read fields by name with a type checker behind them. `kind` tells them apart:
`if event["kind"] == "step": event["loss"]` narrows to `StepEvent`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Literal, NotRequired, TypedDict, Union

EVENT_KINDS = ("start", "step", "epoch", "checkpoint", "stage", "log", "end")
END_STATUSES = ("done", "stopped", "failed")


class StartEvent(TypedDict):
    """A training (or a resumed one) begins."""

    kind: Literal["start"]
    time: str
    run: str
    model: str
    device: str
    precision: str
    processes: int
    train_sentences: int
    validation_sentences: int
    steps_per_epoch: int
    total_steps: int
    epochs: int
    resumed_at_step: int | None


class StepEvent(TypedDict):
    """One optimizer step."""

    kind: Literal["step"]
    time: str
    epoch: int  # 1-based epoch the step belongs to
    step: int  # optimizer steps so far, over the whole run
    epoch_step: int
    steps_per_epoch: int
    total_steps: int
    loss: float
    lr: float
    grad_norm: float | None
    sentences_per_s: float
    elapsed_s: float
    eta_s: float


class EpochEvent(TypedDict):
    """An epoch ended and was validated."""

    kind: Literal["epoch"]
    time: str
    epoch: int
    step: int
    train_loss: float
    val_n: int
    val_loss: float
    val_accuracy: float
    val_mcc: float
    best: bool  # the best validation MCC so far: model/ now holds this epoch
    elapsed_s: float
    # with --ema-decay: the live and the averaged weights' validation MCC; `weights` says which the
    # val_* figures (and model/, when best) are: "raw" or "ema"
    raw_val_mcc: NotRequired[float]
    ema_val_mcc: NotRequired[float]
    weights: NotRequired[str]


class CheckpointEvent(TypedDict):
    kind: Literal["checkpoint"]
    time: str
    step: int
    epoch: int
    epoch_step: int


class StageEvent(TypedDict):
    """The finish after the last step moved on to its INDEX-th of STAGES stages (calibrating, evaluating
    each split), over SENTENCES sentences."""

    kind: Literal["stage"]
    time: str
    stage: str
    index: int  # 1-based
    stages: int
    sentences: int


class LogEvent(TypedDict):
    kind: Literal["log"]
    time: str
    message: str


# The log lines that open and close a training's compile (--compile): the app shows the wait in its headline.
COMPILING = "compiling the model"
COMPILED = "compiled in"
COMPILE_FAILED = "compile failed"
COMPILE_ENDS = (COMPILED, COMPILE_FAILED)
# The log line that says how the training step runs (precision, optimizer kernel, the step's levers).
TRAINING_STEP = "each step:"


class _EndRequired(TypedDict):
    kind: Literal["end"]
    time: str
    status: str  # one of END_STATUSES


class EndEvent(_EndRequired, total=False):
    """The training ended: done (with the final scores), stopped (resumable) or failed (with the error)."""

    error: str
    step: int
    epoch: int
    best_epoch: int
    best_val_mcc: float
    holdout_mcc: float
    holdout_accuracy: float
    holdout_warning: str  # core `degenerate_warning`: no better than the majority class
    in_domain_dev_mcc: float
    decision_threshold: float  # t on the trained p(acceptable), folded into the model (core/evaluation/threshold.py)
    temperature: float  # T, folded with it: the shipped p(acceptable) is sigmoid((z - logit(t)) / T)


Event = Union[StartEvent, StepEvent, EpochEvent, CheckpointEvent, StageEvent, LogEvent, EndEvent]


def now() -> str:
    """The `time` field of an event: local time to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def parse_event(line: str) -> Event | None:
    """One line of metrics.jsonl as an event, or None for a half-written or foreign line."""
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("kind") not in EVENT_KINDS:
        return None
    return record  # type: ignore[return-value]


def of_kind(events: Iterable[Event], kind: str) -> list[Any]:
    """The events of one KIND, in order (typed by the caller: `steps: list[StepEvent] = of_kind(e, "step")`)."""
    return [event for event in events if event["kind"] == kind]
