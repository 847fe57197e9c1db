"""Compare runs: smoothed loss and validation MCC overlaid (one marker per run, the legend on its
own line), and the settings that differ, side by side (core `compare_runs`)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from workbench.tui.widgets.run_charts import CompareCharts


class CompareScreen(ModalScreen[None]):
    """Two or more runs overlaid; escape closes."""

    BINDINGS = [
        Binding("escape,q,c", "dismiss", "Close"),
        Binding("l", "log_scale", "Log loss", tooltip="loss on a log / linear scale"),
        Binding("m", "smoothing", "Smoothing", tooltip="cycle the loss smoothing (off, 0.6 … 0.99)"),
    ]

    def __init__(self, runs_dir: Path, run_ids: list[str]) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.run_ids = run_ids
        self.differing: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="compare-box"):
            yield Static(f"comparing {len(self.run_ids)} runs · escape closes", id="compare-title")
            yield Static("", id="compare-warning")
            yield CompareCharts(self.run_ids, id="compare-view")
            yield DataTable(id="compare-config", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        from workbench.core.base.layout import run_path
        from workbench.core.runs.compare import compare_runs

        comparison = compare_runs([run_path(self.runs_dir, run_id) for run_id in self.run_ids])
        charts = self.query_one(CompareCharts)
        for info, curves in zip(comparison.runs, comparison.curves, strict=True):
            charts.add_run(info.id, [*curves.steps, *curves.epochs])
        self.differing = comparison.differing
        table = self.query_one("#compare-config", DataTable)
        table.add_column("setting", key="setting")
        for info in comparison.runs:
            table.add_column(info.id, key=info.id)
        for label, cells in comparison.rows():
            bold = label not in self.differing
            table.add_row(Text(label, style="bold" if bold else ""), *[Text(cell) for cell in cells], key=label)
        table.border_title = f"{len(self.differing)} differing settings" if self.differing else "same settings"
        warnings = [f"⚠ {warning.removeprefix('WARNING: ')}" for warning in comparison.warnings()]
        box = self.query_one("#compare-warning", Static)
        box.display = bool(warnings)
        box.update(Text("\n".join(warnings), style="bold"))
        table.focus()

    def action_log_scale(self) -> None:
        self.notify(self.query_one(CompareCharts).toggle_log(), timeout=2)

    def action_smoothing(self) -> None:
        self.notify(self.query_one(CompareCharts).cycle_smoothing(), timeout=2)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
