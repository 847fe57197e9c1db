"""5 Runs: every run folder with its status and scores; the opened run's curves, followed live;
marks for comparing runs, stop and CSV export."""

from __future__ import annotations

import contextlib
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from workbench.core.events import Event
from workbench.tui.messages import RunChosen, RunsRefreshed
from workbench.tui.panes.base import Pane
from workbench.tui.widgets.charts import LossSmoother, SeriesChart

STATUS_STYLE = {"running": "bold cyan", "stopped": "yellow", "done": "green", "failed": "red", "new": "dim"}
ERROR_WIDTH = 28  # of a failed run's error in the status column; the line below the table has all of it


def score(value: float | None) -> str:
    return "—" if value is None or value < -1 else f"{value:.3f}"


def status_text(info: Any) -> Text:
    """The status cell: running/stopped/done/failed, a failed run with its last error."""
    text = info.status
    if info.status == "failed" and info.error:
        error = info.error if len(info.error) <= ERROR_WIDTH else info.error[:ERROR_WIDTH - 1] + "…"
        text = f"failed: {error}"
    return Text(text, style=STATUS_STYLE.get(info.status, ""))


class RunsPane(Pane):
    """The runs folder as a table, and the curves of the opened run."""

    BINDINGS = [
        Binding("enter", "open_run", "Open", show=True),
        Binding("space", "toggle_mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("v", "diff", "Diff"),
        Binding("x", "stop_run", "Stop"),
        Binding("e", "export_csv", "CSV"),
        Binding("g", "refresh_runs", "Refresh"),
    ]

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.runs: list[Any] = []
        self.marked: list[str] = []  # in the order marked
        self.charted_run: str | None = None
        self.smoother = LossSmoother()

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-header")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-detail")
        with Horizontal(id="runs-charts"):
            yield SeriesChart("loss", ["loss", "smoothed"], xlabel="step", markers=["dot", "braille"],
                              id="runs-chart-loss")
            yield SeriesChart("validation", ["mcc", "accuracy"], xlabel="epoch", markers=["hd", "hd"],
                              id="runs-chart-val")

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_column("", key="mark")
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
        known = {info.id for info in self.runs}
        self.marked = [run_id for run_id in self.marked if run_id in known]
        self.show_runs()

    def show_runs(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        previous = table.cursor_row
        table.clear()
        current = self.workbench.current_run
        for info in self.runs:
            marker = "▶ " if info.id == current else "  "
            model = info.model.rsplit("/", 1)[-1] if info.model else ""
            table.add_row("●" if info.id in self.marked else " ", Text(marker + info.id), status_text(info),
                          f"{info.epochs_done}/{info.epochs}", score(info.best_val_mcc), score(info.holdout_mcc),
                          Text(model), key=info.id)
        if self.runs:
            table.move_cursor(row=min(previous, len(self.runs) - 1))
        marks = f" · {len(self.marked)} marked" if self.marked else ""
        self.query_one("#runs-header", Static).update(
            f"{len(self.runs)} runs in {escape(str(self.workbench.runs_dir))} · "
            f"current: [b]{escape(current or 'none')}[/b]{escape(marks)}")
        self.show_detail()

    def highlighted(self) -> Any:
        table = self.query_one("#runs-table", DataTable)
        if not self.runs or not 0 <= table.cursor_row < len(self.runs):
            return None
        return self.runs[table.cursor_row]

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_detail()

    def show_detail(self) -> None:
        """One line on the highlighted run: what it is doing, a failed run's whole error."""
        info = self.highlighted()
        detail = self.query_one("#runs-detail", Static)
        if info is None:
            detail.update("no runs yet: in Train (2), s starts one here, D one in the background")
            return
        text = Text(f"{info.id}: ")
        text.append(info.status, style=STATUS_STYLE.get(info.status, ""))
        if info.error:
            text.append(f" — {info.error}", style="red" if info.status == "failed" else "")
        elif info.status == "running":
            text.append(" — x stops it (a checkpoint is saved)")
        text.append(" · charted below" if self.charted_run == info.id else " · enter charts it", style="dim")
        detail.update(text)

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_run()

    def action_open_run(self) -> None:
        info = self.highlighted()
        if info is None:
            self.notify("no run here yet: start one in Train (2)", severity="warning")
            return
        self.post_message(RunChosen(info.id))

    def show_run(self, run_id: str | None) -> None:
        self.show_runs()

    # ------------------------------------------------------------ the followed run's curves

    def start_following(self, run_id: str | None) -> None:
        """The app follows RUN_ID: its events replace what the charts showed."""
        self.charted_run = run_id
        self.smoother = LossSmoother()
        for chart in self.query(SeriesChart):
            chart.clear_series()
        self.show_detail()

    def add_events(self, run_id: str, events: list[Event]) -> None:
        if run_id != self.charted_run:
            return
        loss = self.query_one("#runs-chart-loss", SeriesChart)
        validation = self.query_one("#runs-chart-val", SeriesChart)
        for event in events:
            if event["kind"] == "step":
                step, value = float(event["step"]), float(event["loss"])
                loss.add("loss", step, value)
                loss.add("smoothed", step, self.smoother.add(value))
            elif event["kind"] == "epoch":
                validation.add("mcc", float(event["epoch"]), float(event["val_mcc"]))
                validation.add("accuracy", float(event["epoch"]), float(event["val_accuracy"]))
            elif event["kind"] in ("start", "end"):
                if event["kind"] == "start" and not event["resumed_at_step"]:
                    self.smoother = LossSmoother()
                self.action_refresh_runs()  # the status column changes

    # ------------------------------------------------------------ marks, compare, stop, export

    def action_toggle_mark(self) -> None:
        info = self.highlighted()
        if info is None:
            return
        if info.id in self.marked:
            self.marked.remove(info.id)
        else:
            self.marked.append(info.id)
        table = self.query_one("#runs-table", DataTable)
        row = table.cursor_row
        self.show_runs()
        table.move_cursor(row=min(row + 1, len(self.runs) - 1))  # mark the next one with another space

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        from workbench.tui.widgets.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.workbench.runs_dir, list(self.marked)))

    def action_diff(self) -> None:
        """The two marked runs' predictions side by side (screens/diff.py)."""
        if len(self.marked) != 2:
            self.notify("mark exactly two runs with space, then press v", severity="warning")
            return
        from workbench.tui.screens.diff import DiffScreen

        self.app.push_screen(DiffScreen(self.workbench.runs_dir, *self.marked))

    def action_stop_run(self) -> None:
        """Ask the highlighted run to stop at its next batch (detached or not): core `stop_run`."""
        from workbench.core.runs import RunError, stop_run

        info = self.highlighted()
        if info is None:
            return
        if info.status != "running":
            self.notify(f"{info.id} is not running ({info.status})", severity="warning")
            return
        try:
            stop_run(info.path)
        except RunError as err:
            self.notify(str(err), severity="error")
            return
        self.notify(f"{info.id}: stopping at the next batch (a checkpoint is saved first)")

    def action_export_csv(self) -> None:
        """Write the highlighted run's step and epoch events to runs/<id>/metrics.csv."""
        from workbench.core.runs import RunError, export_metrics_csv

        info = self.highlighted()
        if info is None:
            return
        path = info.path / "metrics.csv"
        try:
            with path.open("w", newline="", encoding="utf-8") as out:
                rows = export_metrics_csv(info.path, out)
        except (RunError, OSError) as err:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            self.notify(f"not exported: {err}", severity="error")
            return
        self.notify(f"wrote {path} ({rows} rows)")
