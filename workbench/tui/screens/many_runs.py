"""Seed groups and sweeps (Runs pane, `G`): what `workbench runs` and `workbench sweep show` print."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.tui.messages import ManyRunsRead


def many_runs_text(runs_dir: Path) -> str:
    """Every seed group's spread and every sweep study's summary in RUNS_DIR (core/groups.py, core/sweep.py)."""
    from workbench.core.base.layout import RunError
    from workbench.core.search.groups import group_summary, list_groups
    from workbench.core.search.sweep import default_storage, study_names, sweep_database, sweep_summary

    parts: list[str] = []
    for group in list_groups(runs_dir):
        parts.append("\n".join(group_summary(runs_dir, group).lines()))
    if sweep_database(runs_dir).is_file():
        storage = default_storage(runs_dir)
        try:
            for study in study_names(storage):
                parts.append("\n".join(sweep_summary(study, storage).lines()))
        except RunError as err:
            parts.append(f"sweeps: {err}")
    if not parts:
        return (f"no seed groups or sweeps in {runs_dir}: `workbench train --seeds 42,43,44 --name NAME` makes a "
                "group, `workbench sweep --trials N` a sweep")
    return "\n\n".join(parts)


class ManyRunsScreen(ModalScreen[None]):
    """Seed groups (median, min, max) and sweep studies (best trial, importances, top trials); escape closes."""

    BINDINGS = [Binding("escape,q,G", "dismiss", "Close")]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.text = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-box"):
            yield Static("reading groups and sweeps…", id="many-text")

    def on_mount(self) -> None:
        self.query_one("#detail-box").border_title = "seed groups and sweeps · escape closes"
        self.read()

    @work(thread=True, exclusive=True, exit_on_error=False, name="groups and sweeps")
    def read(self) -> None:
        try:
            text = many_runs_text(self.runs_dir)
        except Exception as err:  # noqa: BLE001 - a damaged group or study file: say so, keep the app
            text = f"cannot read the groups and sweeps: {type(err).__name__}: {err}"
        self.post_message(ManyRunsRead(text))

    def on_many_runs_read(self, message: ManyRunsRead) -> None:
        self.text = message.text
        self.query_one("#many-text", Static).update(Text(message.text))  # names and paths: never markup

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
