"""The Train pane's text: durations, early stopping's patience, an epoch's and a run's end in one line each.
Pure functions of what they show."""

from __future__ import annotations

from rich.text import Text

from workbench.core.base.events import EndEvent, EpochEvent
from workbench.tui.style import tone, toned


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def patience_text(patience: int, epochs_since_best: int) -> str:
    """Early stopping: how many more epochs without a better validation MCC it allows."""
    if not patience:
        return ""
    return f"patience {max(0, patience - epochs_since_best)}/{patience} left"


def epoch_line(event: EpochEvent) -> Text:
    """`ep 3 MCC 0.412★ acc 0.701 loss 0.41/0.52`: the number it exists for first, ★ a new best."""
    line = Text(f"ep {event['epoch']} ")
    line.append(f"MCC {event['val_mcc']:.3f}", style="bold")
    if event["best"]:
        line.append("★", style=tone("good"))
    line.append(f" acc {event['val_accuracy']:.3f} loss {event['train_loss']:.2f}/{event['val_loss']:.2f}")
    return line


def end_line(event: EndEvent) -> Text:
    status = event["status"]
    if status == "done" and "holdout_mcc" in event:
        line = Text.assemble(
            ("done", "bold"), f": holdout MCC {event['holdout_mcc']:.3f} · acc {event.get('holdout_accuracy', 0.0):.3f}"
        )
        if event.get("holdout_warning"):
            line.append("\n⚠ " + event["holdout_warning"].removeprefix("WARNING: "), style=tone("bad"))
        return line
    if status == "failed":
        return toned(f"failed: {event.get('error')}", "bad")
    return Text.assemble((status, "bold"), f" at step {event.get('step')}")
