"""A run's training events as charts: the one place events become curves.

`RunSeries` reads events (the history of metrics.jsonl, then live ones) into the series a
run is judged by; `RunCharts` shows one run (Train and Runs panes); `CompareCharts`
overlays several (the compare screen). Both take events, never their own copies of rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static

from workbench.core.base.events import Event
from workbench.tui.widgets.charts import GLYPHS, MAX_POINTS, SMOOTHING_STEPS, Point, SeriesChart

CHARTS = ("loss", "validation", "lr", "grad_norm")
CHART_IDS = {"loss": "loss", "validation": "val", "lr": "lr", "grad_norm": "grad"}  # PREFIX-<id>
COMPARE_MARKERS = ["braille", "dot", "x", "+", "o", "*"]  # tell runs apart without colour (NO_COLOR)


@dataclass
class RunSeries:
    """The curves of one run, from its events: loss, learning rate and gradient norm per step;
    validation MCC and accuracy per epoch; the best epoch, and epochs since it (for patience)."""

    loss: list[Point] = field(default_factory=list)
    lr: list[Point] = field(default_factory=list)
    grad_norm: list[Point] = field(default_factory=list)
    val_mcc: list[Point] = field(default_factory=list)
    val_accuracy: list[Point] = field(default_factory=list)
    best: Point | None = None  # (epoch, validation MCC) of the best epoch
    epochs_since_best: int = 0
    epochs_planned: int = 0

    def add(self, event: Event) -> None:
        if event["kind"] == "step":
            step = float(event["step"])
            self.loss.append((step, float(event["loss"])))
            self.lr.append((step, float(event["lr"])))
            if event.get("grad_norm") is not None:
                self.grad_norm.append((step, float(event["grad_norm"])))  # type: ignore[arg-type]
        elif event["kind"] == "epoch":
            epoch, mcc = float(event["epoch"]), float(event["val_mcc"])
            self.val_mcc.append((epoch, mcc))
            self.val_accuracy.append((epoch, float(event["val_accuracy"])))
            if event["best"]:
                self.best, self.epochs_since_best = (epoch, mcc), 0
            else:
                self.epochs_since_best += 1
        elif event["kind"] == "start":
            self.epochs_planned = int(event["epochs"])


def run_series(events: Iterable[Event]) -> RunSeries:
    series = RunSeries()
    for event in events:
        series.add(event)
    return series


def best_caption(best: Point | None) -> str:
    """`best 0.412@7`: the best validation MCC and its epoch (the legend's short form keeps `0.412@7`)."""
    return f"best {best[1]:.3f}@{int(best[0])}" if best else ""


class RunCharts(Grid):
    """One run's charts, fed with events: `add_events`, `clear`. SHOW picks among CHARTS
    (loss, validation, lr, grad_norm); `toggle_log` and `cycle_smoothing` act on the loss."""

    def __init__(
        self,
        show: Sequence[str] = CHARTS,
        *,
        prefix: str,
        id: str | None = None,  # noqa: A002
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.show = [name for name in CHARTS if name in show]
        self.prefix = prefix
        self.series = RunSeries()
        self.steps_seen = 0

    def compose(self) -> ComposeResult:
        for name in self.show:
            yield self.make_chart(name)

    def make_chart(self, name: str) -> SeriesChart:
        chart_id = f"{self.prefix}-{CHART_IDS[name]}"
        if name == "loss":
            return SeriesChart(
                "loss",
                ["loss"],
                xlabel="step",
                markers=["braille"],
                smoothed=["loss"],
                raw_marker="dot",
                id=chart_id,
                classes="run-chart",
            )
        if name == "validation":
            return SeriesChart(
                "val",
                ["mcc", "accuracy"],
                labels=["MCC", "acc"],
                xlabel="epoch",
                markers=["braille", "dot"],
                ylim=(0.0, 1.0),
                id=chart_id,
                classes="run-chart",
            )
        if name == "lr":
            return SeriesChart(
                "lr", ["lr"], xlabel="step", scientific=True, legend=False, id=chart_id, classes="run-chart"
            )
        return SeriesChart("grad norm", ["grad_norm"], xlabel="step", legend=False, id=chart_id, classes="run-chart")

    def chart(self, name: str) -> SeriesChart:
        return self.query_one(f"#{self.prefix}-{CHART_IDS[name]}", SeriesChart)

    def charts(self) -> list[SeriesChart]:
        return [self.chart(name) for name in self.show]

    def add_events(self, events: Iterable[Event]) -> None:
        series = self.series
        counts = {name: len(getattr(series, name)) for name in ("loss", "lr", "grad_norm", "val_mcc")}
        for event in events:
            if event["kind"] == "start" and not event["resumed_at_step"] and series.loss:
                self.clear()  # the run started over: a new history
                series = self.series
                counts = dict.fromkeys(counts, 0)
            series.add(event)
        for name in ("loss", "lr", "grad_norm"):
            if name in self.show:
                chart = self.chart(name)
                for x, y in getattr(series, name)[counts[name] :]:
                    chart.add(name, x, y)
        if "validation" in self.show:
            chart = self.chart("validation")
            for (x, mcc), (_, accuracy) in zip(
                series.val_mcc[counts["val_mcc"] :], series.val_accuracy[counts["val_mcc"] :], strict=True
            ):
                chart.add("mcc", x, mcc)
                chart.add("accuracy", x, accuracy)
            chart.highlight = (series.best, best_caption(series.best)) if series.best else None
            planned = (1.0, float(series.epochs_planned)) if series.epochs_planned else None
            if planned != chart.x_range:  # (steps alone leave this chart as it is: no redraw)
                chart.x_range = planned
                chart.mark_dirty()
        self.trim()

    def trim(self) -> None:
        """The series keep what the charts show (the charts' windows), not the whole run."""
        for name in ("loss", "lr", "grad_norm"):
            values = getattr(self.series, name)
            if len(values) > 2 * MAX_POINTS:
                del values[:-MAX_POINTS]

    def clear(self) -> None:
        self.series = RunSeries()
        for chart in self.charts():
            chart.clear_series()

    def toggle_log(self) -> str:
        chart = self.loss_chart()
        if chart is None:
            return "no loss chart here"
        chart.log_y = not chart.log_y
        chart.mark_dirty()
        return f"loss on a {'log' if chart.log_y else 'linear'} scale"

    def cycle_smoothing(self) -> str:
        chart = self.loss_chart()
        if chart is None:
            return "no loss chart here"
        chart.smoothing = next_smoothing(chart.smoothing)
        chart.mark_dirty()
        return f"loss smoothing {chart.smoothing:g}" + (" (off)" if not chart.smoothing else "")

    def loss_chart(self) -> SeriesChart | None:
        return self.chart("loss") if "loss" in self.show else None


def next_smoothing(current: float) -> float:
    later = [value for value in SMOOTHING_STEPS if value > current + 1e-9]
    return later[0] if later else SMOOTHING_STEPS[0]


class CompareCharts(Vertical):
    """Several runs overlaid: smoothed loss and validation MCC, one marker per run, the legend
    on its own line above the charts."""

    def __init__(self, run_ids: Sequence[str], *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.run_ids = list(run_ids)
        self.markers = [COMPARE_MARKERS[i % len(COMPARE_MARKERS)] for i in range(len(self.run_ids))]
        self.series: dict[str, RunSeries] = {}

    def compose(self) -> ComposeResult:
        legend = Text()
        for run_id, marker in zip(self.run_ids, self.markers, strict=True):
            legend.append(f"{GLYPHS.get(marker, marker)} ", style="bold")
            legend.append(f"{run_id}   ")
        yield Static(legend, id="compare-legend")
        with Grid(id="compare-charts"):
            yield SeriesChart(
                "loss",
                self.run_ids,
                xlabel="step",
                markers=self.markers,
                smoothed=self.run_ids,
                legend=False,
                id="compare-loss",
            )
            yield SeriesChart(
                "validation MCC", self.run_ids, xlabel="epoch", markers=self.markers, legend=False, id="compare-mcc"
            )

    def add_run(self, run_id: str, events: Iterable[Event]) -> None:
        series = self.series[run_id] = run_series(events)
        loss, mcc = self.query_one("#compare-loss", SeriesChart), self.query_one("#compare-mcc", SeriesChart)
        for x, y in series.loss:
            loss.add(run_id, x, y)
        for x, y in series.val_mcc:
            mcc.add(run_id, x, y)

    def toggle_log(self) -> str:
        chart = self.query_one("#compare-loss", SeriesChart)
        chart.log_y = not chart.log_y
        chart.mark_dirty()
        return f"loss on a {'log' if chart.log_y else 'linear'} scale"

    def cycle_smoothing(self) -> str:
        chart = self.query_one("#compare-loss", SeriesChart)
        chart.smoothing = next_smoothing(chart.smoothing)
        chart.mark_dirty()
        return f"loss smoothing {chart.smoothing:g}"
