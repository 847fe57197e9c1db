"""5 Runs: every run folder with its status and scores, newest first; the opened run's curves,
followed live; marks for comparing runs, details, stop and CSV export.

The list keeps its status, epochs and MCC columns in view at any width from 60 columns: below 70
their headers are short, a long run id is cut in its middle, and a failed run's error (whole in the
line below the list, and in `i`) and the model column take only the room that is left."""

from __future__ import annotations

import contextlib
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static

from workbench.core.base.events import Event
from workbench.tui.messages import RunChosen, RunsRefreshed, StatusChanged
from workbench.tui.panes.base import Pane
from workbench.tui.style import status_text, tone
from workbench.tui.widgets.run_charts import RunCharts

ERROR_WIDTH = 20  # at most, of a failed run's error in the status column; the line below and `i` have all of it
NARROW = 70  # below this many columns: short headers and run ids
RUN_ID_WIDTH = (15, 24)  # a longer run id is cut in its middle: below NARROW (a timestamp id whole), above
HEADERS = {
    "mark": "",
    "run": "run",
    "status": "status",
    "epochs": "epochs",
    "val": "best val",
    "holdout": "holdout",
    "model": "model",
}
NARROW_HEADERS = {**HEADERS, "epochs": "epoch", "val": "val"}
MIN_MODEL_WIDTH = 8  # the model column is left out where fewer of its characters would show
CELL_PADDING = 2  # a DataTable column's padding (one each side)
SCROLLBAR = 2  # the list's vertical scrollbar, when it has more runs than rows


def score(value: float | None) -> str:
    return "—" if value is None or value < -1 else f"{value:.3f}"


def status_cell(info: Any, error_width: int = ERROR_WIDTH) -> Text:
    """The status cell: ✓ done, ▶ running, ‖ stopped, ✗ failed with the start of its error (ERROR_WIDTH
    characters at most; none with 0)."""
    error = ""
    if info.status == "failed" and info.error and error_width > 0:
        error = info.error if len(info.error) <= error_width else info.error[: error_width - 1] + "…"
    return status_text(info.status, error)


def short_id(run_id: str, width: int) -> str:
    """RUN_ID in WIDTH characters at most, cut in its middle (a sweep's trials differ at their end)."""
    if len(run_id) <= width:
        return run_id
    head = (width - 1) // 2
    return run_id[:head] + "…" + run_id[len(run_id) - (width - 1 - head) :]


def list_layout(runs: list[Any], width: int) -> tuple[bool, int, int]:
    """How the list fits WIDTH columns: (narrow, the characters of a failed run's error, of the model
    column: 0 for none). Status, epochs and the two MCC columns always fit from 60 columns; the error,
    then the model, take what is left."""
    narrow = width < NARROW
    headers = NARROW_HEADERS if narrow else HEADERS
    id_width = RUN_ID_WIDTH[0] if narrow else RUN_ID_WIDTH[1]

    def column(name: str, cells: list[str]) -> int:
        return max([cell_len(headers[name]), *(cell_len(cell) for cell in cells)]) + CELL_PADDING

    needed = (
        column("mark", ["●"])
        + column("run", ["▶ " + short_id(info.id, id_width) for info in runs])
        + column("status", [status_cell(info, 0).plain for info in runs])
        + column("epochs", [info.epochs_text for info in runs])
        + column("val", [score(info.best_val_mcc) for info in runs])
        + column("holdout", [score(info.holdout_mcc) for info in runs])
        + SCROLLBAR
    )
    room = width - needed
    error_width = 0
    if any(info.status == "failed" and info.error for info in runs):
        error_width = min(ERROR_WIDTH, room - 2)  # after ": "
        if error_width < 8:
            error_width = 0
        room -= error_width + 2 if error_width else 0
    model_width = room - CELL_PADDING
    return narrow, error_width, model_width if model_width >= MIN_MODEL_WIDTH else 0


def newest_first(runs: list[Any]) -> list[Any]:
    """Latest started first; a run not started yet (just created) on top."""
    return sorted(runs, key=lambda info: (info.started or "9999", info.id), reverse=True)


class RunsTable(DataTable[Any]):
    """The runs list; enter opens the highlighted run (shown in the footer)."""

    BINDINGS = [Binding("enter", "select_cursor", "Open", tooltip="open the run in every pane and chart it")]


class RunsPane(Pane):
    """The runs folder as a table, and the curves of the opened run."""

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark", tooltip="mark / unmark the highlighted run for comparing"),
        Binding("c", "compare", "Compare", tooltip="compare the marked runs: curves overlaid, differing settings"),
        Binding("i", "details", "Info", tooltip="the highlighted run in full (a failure's whole reason)"),
        Binding("v", "diff", "Diff", show=False, tooltip="where the two marked runs' predictions disagree"),
        Binding("G", "many_runs", "Groups", show=False, tooltip="seed groups (median, min, max) and sweeps"),
        Binding("x", "stop_run", "Stop", tooltip="stop the highlighted running run at its next batch"),
        Binding("e", "export_csv", "CSV", show=False, tooltip="write its metrics to runs/<id>/metrics.csv"),
        Binding("g", "refresh_runs(True)", "Refresh", show=False, tooltip="list the runs folder again"),
        Binding("l", "log_scale", "Log", show=False, tooltip="loss chart on a log / linear scale"),
        Binding("m", "smoothing", "Smooth", show=False, tooltip="cycle the loss smoothing"),
    ]
    HELP = "newest first; ▶ is the opened run, ● a marked one; the charts show the opened run, live"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.runs: list[Any] = []
        self.marked: list[str] = []  # in the order marked
        self.charted_run: str | None = None
        self.cursor_run: str | None = None  # the run under the cursor, kept across refreshes
        self.announce_refresh = False
        self.columns_for: tuple[bool, int, int] | None = None  # list_layout's answer the table's columns are for

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-header")
        yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-detail")
        yield Static("", id="runs-caption")
        yield RunCharts(("loss", "validation"), prefix="runs-chart", id="runs-charts")

    @property
    def charts(self) -> RunCharts:
        return self.query_one("#runs-charts", RunCharts)

    def on_mount(self) -> None:
        self.cursor_run = self.session.current_run
        self.show_runs()  # (the columns, before any run)
        self.action_refresh_runs()

    def on_resize(self, event: events.Resize) -> None:
        if self.columns_for is not None and list_layout(self.runs, self.list_width()) != self.columns_for:
            self.show_runs()

    def list_width(self) -> int:
        return self.size.width or self.app.size.width  # (the pane spans the screen; 0 before its layout)

    def focus_default(self, leaving_field: bool = False) -> None:
        self.focus_on(self.query_one("#runs-table"))

    def action_refresh_runs(self, announce: bool = False) -> None:
        self.announce_refresh = self.announce_refresh or announce
        self.list_runs_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs", name="list runs")
    def list_runs_worker(self) -> None:
        from workbench.core.runs.status import list_runs

        self.post_message(RunsRefreshed(newest_first(list_runs(self.session.runs_dir))))

    def on_runs_refreshed(self, message: RunsRefreshed) -> None:
        table = self.query_one("#runs-table", DataTable)
        if 0 <= table.cursor_row < table.row_count:  # the row under the cursor now, though its highlight
            # event may still be queued: a refresh landing just after an arrow key keeps the user's row
            self.cursor_run = str(table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value)
        self.runs = message.runs
        known = {info.id for info in self.runs}
        self.marked = [run_id for run_id in self.marked if run_id in known]
        self.show_runs()
        if self.announce_refresh:
            self.announce_refresh = False
            running = sum(info.status == "running" for info in self.runs)
            self.post_message(
                StatusChanged(
                    f"runs list refreshed from {self.session.runs_dir}: {len(self.runs)} runs, {running} running"
                )
            )

    def show_runs(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        layout = list_layout(self.runs, self.list_width())
        narrow, error_width, model_width = layout
        if layout != self.columns_for:
            self.columns_for = layout
            table.clear(columns=True)
            headers = NARROW_HEADERS if narrow else HEADERS
            for key in ("mark", "run", "status", "epochs", "val", "holdout", *(["model"] if model_width else [])):
                table.add_column(headers[key], key=key)
        else:
            table.clear()
        current = self.session.current_run
        id_width = RUN_ID_WIDTH[0] if narrow else RUN_ID_WIDTH[1]
        for info in self.runs:
            marker = "▶ " if info.id == current else "  "
            model = Text(info.model.rsplit("/", 1)[-1] if info.model else "")
            model.truncate(model_width, overflow="ellipsis")
            cells = [
                "●" if info.id in self.marked else " ",
                Text(marker + short_id(info.id, id_width)),
                status_cell(info, error_width),
                info.epochs_text,
                score(info.best_val_mcc),
                score(info.holdout_mcc),
            ]
            table.add_row(*cells, *([model] if model_width else []), key=info.id)
        ids = [info.id for info in self.runs]
        if self.cursor_run in ids:
            table.move_cursor(row=ids.index(str(self.cursor_run)), animate=False)
        marks = f" · {len(self.marked)} marked" if self.marked else ""
        count = f"{len(self.runs)} run" + ("" if len(self.runs) == 1 else "s")
        header = Text(f"{count} in {self.session.runs_dir} · newest first · opened, charted: ")
        header.append(current or "none", style="bold")
        self.query_one("#runs-header", Static).update(header + Text(marks))
        self.show_detail()

    def highlighted(self) -> Any:
        table = self.query_one("#runs-table", DataTable)
        if not self.runs or not 0 <= table.cursor_row < len(self.runs):
            return None
        return self.runs[table.cursor_row]

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        info = self.highlighted()
        if info is not None:
            self.cursor_run = info.id
        self.show_detail()

    def show_detail(self) -> None:
        """The highlighted run, with a failed run's whole error (wrapped); `i` shows everything."""
        info = self.highlighted()
        detail = self.query_one("#runs-detail", Static)
        if info is None:
            detail.update("no runs yet: in Train (2), s starts one here, D one in the background")
            return
        text = Text(f"{info.id}: ", style="bold")
        text.append_text(status_text(info.status))
        if info.error:
            text.append(f" — {info.error}")
        elif info.status == "running":
            text.append(" — x stops it (a checkpoint is saved)")
        text.append(" · i details" + ("" if self.charted_run == info.id else " · enter opens it"), style=tone("muted"))
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
        self.cursor_run = run_id or self.cursor_run
        self.show_runs()

    def action_many_runs(self) -> None:
        """Seed groups and sweep studies of the runs folder (screens/many_runs.py)."""
        from workbench.tui.screens.many_runs import ManyRunsScreen

        self.app.push_screen(ManyRunsScreen(self.session.runs_dir))

    def action_details(self) -> None:
        info = self.highlighted()
        if info is None:
            return
        from workbench.tui.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(info))

    # ------------------------------------------------------------ the followed run's curves

    def start_following(self, run_id: str | None) -> None:
        """The app follows RUN_ID: its events replace what the charts showed."""
        self.charted_run = run_id
        self.charts.clear()
        caption = Text("charts: ")
        caption.append(f"run {run_id}" if run_id else "no run opened (enter opens the highlighted one)", style="bold")
        self.query_one("#runs-caption", Static).update(caption)
        self.show_detail()

    def add_events(self, run_id: str, events: list[Event]) -> None:
        if run_id != self.charted_run:
            return
        self.charts.add_events(events)
        if any(event["kind"] in ("start", "end") for event in events):
            self.action_refresh_runs()  # the status column changes

    def action_log_scale(self) -> None:
        self.post_message(StatusChanged(self.charts.toggle_log()))

    def action_smoothing(self) -> None:
        self.post_message(StatusChanged(self.charts.cycle_smoothing()))

    # ------------------------------------------------------------ marks, compare, stop, export

    def action_toggle_mark(self) -> None:
        """Mark or unmark the highlighted run; the cursor stays (down arrow to the next one)."""
        info = self.highlighted()
        if info is None:
            return
        if info.id in self.marked:
            self.marked.remove(info.id)
        else:
            self.marked.append(info.id)
        self.show_runs()

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        from workbench.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.session.runs_dir, list(self.marked)))

    def action_diff(self) -> None:
        """The two marked runs' predictions side by side (screens/diff.py)."""
        if len(self.marked) != 2:
            self.notify("mark exactly two runs with space, then press v", severity="warning")
            return
        from workbench.tui.screens.diff import DiffScreen

        self.app.push_screen(DiffScreen(self.session.runs_dir, *self.marked))

    def action_stop_run(self) -> None:
        """Ask the highlighted run to stop at its next batch (detached or not): core `stop_run`."""
        from workbench.core.base.layout import RunError
        from workbench.core.runs.status import stop_run

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
        from workbench.core.base.layout import RunError
        from workbench.core.runs.metrics import export_metrics_csv

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
