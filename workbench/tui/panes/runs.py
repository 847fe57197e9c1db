"""5 Runs: every run folder with its status and scores; enter opens one in every pane."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from workbench.tui.messages import RunChosen, RunsRefreshed
from workbench.tui.panes.base import Pane

STATUS_STYLE = {"running": "bold cyan", "stopped": "yellow", "done": "green", "failed": "red", "new": "dim"}


def score(value: float | None) -> str:
    return "—" if value is None or value < -1 else f"{value:.3f}"


class RunsPane(Pane):
    """The runs folder as a table."""

    BINDINGS = [
        Binding("g", "refresh_runs", "Refresh"),
        Binding("enter", "open_run", "Open", show=True),
    ]

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.runs: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-header")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_column("run", key="run")
        table.add_column("status", key="status")
        table.add_column("epochs", key="epochs")
        table.add_column("best val MCC", key="val")
        table.add_column("holdout MCC", key="holdout")
        table.add_column("model", key="model")
        self.action_refresh_runs()

    def focus_default(self) -> None:
        self.query_one("#runs-table").focus()

    def action_refresh_runs(self) -> None:
        self.list_runs_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs", name="list runs")
    def list_runs_worker(self) -> None:
        from workbench.core.runs import list_runs

        self.post_message(RunsRefreshed(list_runs(self.workbench.runs_dir)))

    def on_runs_refreshed(self, message: RunsRefreshed) -> None:
        self.runs = message.runs
        self.show_runs()

    def show_runs(self) -> None:
        from rich.text import Text

        table = self.query_one("#runs-table", DataTable)
        previous = table.cursor_row
        table.clear()
        current = self.workbench.current_run
        for info in self.runs:
            marker = "▶ " if info.id == current else "  "
            model = info.model.rsplit("/", 1)[-1] if info.model else ""
            table.add_row(marker + info.id, Text(info.status, style=STATUS_STYLE.get(info.status, "")),
                          f"{info.epochs_done}/{info.epochs}", score(info.best_val_mcc), score(info.holdout_mcc),
                          model, key=info.id)
        if self.runs:
            table.move_cursor(row=min(previous, len(self.runs) - 1))
        self.query_one("#runs-header", Static).update(
            f"{len(self.runs)} runs in {self.workbench.runs_dir} · current: [b]{current or 'none'}[/b] · "
            "enter opens · g refreshes")

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_run()

    def action_open_run(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        if not self.runs or table.cursor_row >= len(self.runs):
            self.notify("no run here yet: start one in Train (2)", severity="warning")
            return
        self.post_message(RunChosen(self.runs[table.cursor_row].id))

    def show_run(self, run_id: str | None) -> None:
        self.show_runs()
