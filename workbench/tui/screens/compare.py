"""Compare runs: smoothed loss and validation MCC overlaid (one series per run, with a legend),
and the settings that differ, side by side."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from workbench.core.runs import RunCurves
from workbench.tui.widgets.charts import LossSmoother, SeriesChart

MARKERS = ["braille", "dot", "x", "+", "o", "*"]  # tell the runs apart without colour (NO_COLOR)


def smoothed_curves(curves: RunCurves) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(smoothed loss per step, validation MCC per epoch) of one run."""
    smoother = LossSmoother()
    loss = [(float(e["step"]), smoother.add(float(e["loss"]))) for e in curves.steps]
    mcc = [(float(e["epoch"]), float(e["val_mcc"])) for e in curves.epochs]
    return loss, mcc


class CompareScreen(ModalScreen[None]):
    """Two or more runs overlaid; escape closes."""

    BINDINGS = [Binding("escape,q,c", "dismiss", "Close")]

    def __init__(self, runs_dir: Path, run_ids: list[str]) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.run_ids = run_ids
        self.differing: list[str] = []

    def compose(self) -> ComposeResult:
        markers = [MARKERS[i % len(MARKERS)] for i in range(len(self.run_ids))]
        with Vertical(id="compare-box"):
            yield Static(f"comparing {', '.join(self.run_ids)} · escape closes", id="compare-title")
            with Horizontal(id="compare-charts"):
                yield SeriesChart("loss (smoothed)", self.run_ids, xlabel="step", markers=markers,
                                  id="compare-loss")
                yield SeriesChart("validation MCC", self.run_ids, xlabel="epoch", markers=markers,
                                  id="compare-mcc")
            yield DataTable(id="compare-config", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        from workbench.core.runs import compare_runs

        comparison = compare_runs([self.runs_dir / run_id for run_id in self.run_ids])
        loss_chart = self.query_one("#compare-loss", SeriesChart)
        mcc_chart = self.query_one("#compare-mcc", SeriesChart)
        for info, curves in zip(comparison.runs, comparison.curves, strict=True):
            loss, mcc = smoothed_curves(curves)
            for step, value in loss:
                loss_chart.add(info.id, step, value)
            for epoch, value in mcc:
                mcc_chart.add(info.id, epoch, value)
        self.differing = comparison.differing
        table = self.query_one("#compare-config", DataTable)
        table.add_column("setting", key="setting")
        for info in comparison.runs:
            table.add_column(info.id, key=info.id)
        for label, cells in comparison.rows():
            bold = label not in self.differing
            table.add_row(Text(label, style="bold" if bold else ""), *[Text(cell) for cell in cells], key=label)
        if not self.differing:
            table.border_title = "same settings"
        else:
            table.border_title = f"{len(self.differing)} differing settings"
        table.focus()

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
