"""A run in full: status, the whole failure reason, scores and settings (Runs pane, `i`)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.core.base.config import format_setting
from workbench.tui.style import status_text


def run_detail(info: Any) -> Text:
    """What `workbench runs` knows of a run, with a failed run's error unabridged."""
    text = Text()
    text.append(f"run {info.id}\n", style="bold")
    text.append("status   ")
    text.append_text(status_text(info.status))
    text.append("\n")
    if info.error:
        text.append("reason   ", style="bold")
        text.append(f"{info.error}\n")
    best = f"{info.best_val_mcc:.3f}" if info.best_val_mcc is not None else "—"
    holdout = f"{info.holdout_mcc:.3f}" if info.holdout_mcc is not None else "—"
    text.append(
        f"started  {info.started or '—'}\nepochs   {info.epochs_text}\n"
        f"best val MCC {best} · holdout MCC {holdout}\nfolder   {info.path}\n"
    )
    if info.trained_on:  # overrides or a map's regions: which sentences it trained on
        text.append(f"data     {info.trained_on}\n")
    if info.config:
        text.append("\nsettings\n", style="bold")
        for key, value in info.config.items():
            text.append(f"  {key:<20} {format_setting(value)}\n")
    return text


class RunDetailScreen(ModalScreen[None]):
    """One run's details; escape (or i, q) closes."""

    BINDINGS = [Binding("escape,q,i", "dismiss", "Close")]

    def __init__(self, info: Any) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-box"):
            yield Static(run_detail(self.info), id="detail-text")

    def on_mount(self) -> None:
        self.query_one("#detail-box").border_title = f"run {self.info.id} · escape closes"

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
