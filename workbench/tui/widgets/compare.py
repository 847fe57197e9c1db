"""Compare runs: smoothed loss and validation MCC overlaid (one series per run, with a legend),
and the settings that differ, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from workbench.tui.widgets.charts import LossSmoother, SeriesChart

MARKERS = ["braille", "dot", "x", "+", "o", "*"]  # tell the runs apart without colour (NO_COLOR)


def run_curves(events: list[dict[str, Any]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(smoothed loss per step, validation MCC per epoch) of one run's events."""
    smoother = LossSmoother()
    loss: list[tuple[float, float]] = []
    mcc: list[tuple[float, float]] = []
    for event in events:
        kind = event.get("kind")
        if kind == "step":
            loss.append((float(event["step"]), smoother.add(float(event["loss"]))))
        elif kind == "epoch":
            mcc.append((float(event["epoch"]), float(event["val_mcc"])))
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
        from workbench.core.runs import differing_settings, read_metrics, run_info

        infos = [run_info(self.runs_dir / run_id) for run_id in self.run_ids]
        loss_chart = self.query_one("#compare-loss", SeriesChart)
        mcc_chart = self.query_one("#compare-mcc", SeriesChart)
        for info in infos:
            loss, mcc = run_curves(read_metrics(info.path))
            for step, value in loss:
                loss_chart.add(info.id, step, value)
            for epoch, value in mcc:
                mcc_chart.add(info.id, epoch, value)
        self.differing = differing_settings([info.config for info in infos])
        table = self.query_one("#compare-config", DataTable)
        table.add_column("setting", key="setting")
        for info in infos:
            table.add_column(info.id, key=info.id)
        for key in self.differing:
            table.add_row(key, *[Text(str(info.config.get(key, "—"))) for info in infos], key=key)
        for label, attr in (("best val MCC", "best_val_mcc"), ("holdout MCC", "holdout_mcc")):
            values = [getattr(info, attr) for info in infos]
            table.add_row(Text(label, style="bold"),
                          *[f"{value:.3f}" if value is not None else "—" for value in values], key=label)
        if not self.differing:
            table.border_title = "same settings"
        else:
            table.border_title = f"{len(self.differing)} differing settings"
        table.focus()

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
