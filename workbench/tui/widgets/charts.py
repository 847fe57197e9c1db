"""Plotext charts that keep their own bounded series and redraw on a timer (about 4 Hz).

Data arrives at any rate through `add`; the chart only marks itself dirty. A timer
redraws at most REDRAW_HZ times a second, so a fast training never floods the screen.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from typing import Any

from textual_plotext import PlotextPlot

REDRAW_HZ = 4.0
MAX_POINTS = 5000
SMOOTHING = 0.9  # exponential moving average of the loss, bias-corrected


class LossSmoother:
    """Bias-corrected exponential moving average, as TensorBoard draws smoothed curves."""

    def __init__(self, beta: float = SMOOTHING):
        self.beta = beta
        self.average = 0.0
        self.count = 0

    def add(self, value: float) -> float:
        self.count += 1
        self.average = self.beta * self.average + (1 - self.beta) * value
        return self.average / (1 - self.beta ** self.count)


def _theme() -> str:
    return "clear" if os.environ.get("NO_COLOR") else "auto"


class TimedPlot(PlotextPlot):
    """A plotext chart that redraws on a timer, at most REDRAW_HZ times a second, and only
    when its data changed; subclasses draw in `draw`."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.redraws = 0
        self._dirty = True

    def on_mount(self) -> None:
        super().on_mount()
        self.theme = _theme()  # type: ignore[assignment]
        self.set_interval(1 / REDRAW_HZ, self.redraw_if_dirty)
        self.redraw_if_dirty()

    def redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        self.plt.clear_data()
        self.draw(self.plt)
        self.refresh()

    def draw(self, plt: Any) -> None:
        raise NotImplementedError


class SeriesChart(TimedPlot):
    """Line chart of named (x, y) series, e.g. raw and smoothed loss."""

    def __init__(self, title: str, series: Sequence[str], *, xlabel: str = "", ylim: tuple[float, float] | None = None,
                 max_points: int = MAX_POINTS, markers: Sequence[str] | None = None, id: str | None = None,  # noqa: A002
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.xlabel = xlabel
        self.ylim = ylim
        self.series: dict[str, deque[tuple[float, float]]] = {name: deque(maxlen=max_points) for name in series}
        self.markers = dict(zip(series, markers or ["braille"] * len(series), strict=False))

    def add(self, name: str, x: float, y: float) -> None:
        self.series[name].append((x, y))
        self._dirty = True

    def clear_series(self) -> None:
        for points in self.series.values():
            points.clear()
        self._dirty = True

    def points(self, name: str) -> int:
        return len(self.series[name])

    def draw(self, plt: Any) -> None:
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        if self.ylim:
            plt.ylim(*self.ylim)
        for name, points in self.series.items():
            if points:
                xs, ys = zip(*points, strict=True)
                plt.plot(list(xs), list(ys), label=name, marker=self.markers.get(name, "braille"))


class Histogram(TimedPlot):
    """Histogram of integers (token lengths)."""

    def __init__(self, title: str, *, bins: int = 24, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.title = title
        self.bins = bins
        self.values: list[int] = []

    def set_values(self, values: Sequence[int]) -> None:
        self.values = list(values)
        self._dirty = True

    def draw(self, plt: Any) -> None:
        plt.title(self.title)
        if self.values:
            plt.hist(self.values, bins=self.bins)
