"""Plotext charts that keep their own bounded series and redraw on the app's clock (REDRAW_HZ, 2 a second).

Data arrives at any rate through `add`; the chart only marks itself dirty. The app's one redraw clock
(`ticker`) redraws at most REDRAW_HZ times a second, every chart in the same tick, so a fast training never
floods the screen, and a redraw draws at most a few points per column (a 5,000-point window costs what a
200-point one does). The built picture is kept until the data or the size change: showing a pane again
costs nothing.

Readable without colour and at a glance: integer ticks for steps, epochs and counts,
scientific notation for tiny values (learning rates), the legend in the title line
(never over the data), a marker per series.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from plotext._dict import themes as plotext_themes  # the registry textual-plotext adds the app's themes to
from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual.css.query import NoMatches
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual_plotext import PlotextPlot

REDRAW_HZ = 2.0
MAX_POINTS = 5000
SMOOTHING = 0.9  # exponential moving average of the loss, bias-corrected
SMOOTHING_STEPS = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)  # what the smoothing key cycles through
GLYPHS = {"braille": "⣿", "dot": "•", "hd": "▞", "fhd": "▟", "sd": "█"}  # a marker's look, for legends

Point = tuple[float, float]


class Ticker:
    """The app's one redraw clock, REDRAW_HZ: every chart and live line that redraws as data arrives does so
    in the same tick, so the screen is composed and written once a tick rather than once per widget (each
    composition costs the training beside the app on a 2-core machine)."""

    def __init__(self, app: Any) -> None:
        self.count = 0
        self.callbacks: list[tuple[Callable[[], None], int]] = []  # (callback, every how many ticks)
        self.timer = app.set_interval(1 / REDRAW_HZ, self.tick, name="redraw ticker")

    def add(self, callback: Callable[[], None], every: int = 1) -> None:
        self.callbacks.append((callback, every))

    def remove(self, callback: Callable[[], None]) -> None:
        self.callbacks = [(c, every) for c, every in self.callbacks if c != callback]

    def tick(self) -> None:
        self.count += 1
        for callback, every in list(self.callbacks):
            if self.count % every:
                continue
            owner = getattr(callback, "__self__", None)
            if owner is not None and (not owner.is_attached or owner._closing or owner._closed):
                self.remove(callback)  # a widget leaving (its own on_unmount removes it too)
                continue
            try:
                callback()
            except NoMatches:  # a widget whose children are already gone: the app is closing
                continue


def ticker(app: Any) -> Ticker:
    """APP's redraw clock (made on first use)."""
    found = getattr(app, "_redraw_ticker", None)
    if found is None:
        found = Ticker(app)
        app._redraw_ticker = found
    return cast(Ticker, found)


def smooth(values: Sequence[float], beta: float) -> list[float]:
    """Bias-corrected exponential moving average, as TensorBoard draws smoothed curves (beta 0: the values)."""
    if beta <= 0:
        return list(values)
    average, out = 0.0, []
    for count, value in enumerate(values, start=1):
        average = beta * average + (1 - beta) * value
        out.append(average / (1 - beta**count))
    return out


def thin(points: Sequence[Point], buckets: int, extremes: bool = False) -> list[Point]:
    """At most about BUCKETS points (2 per bucket with EXTREMES: its lowest and highest, so that
    noise stays visible); the last point is always kept."""
    if len(points) <= max(buckets, 2) * (2 if extremes else 1):
        return list(points)
    size = len(points) / buckets
    out: list[Point] = []
    for b in range(buckets):
        chunk = points[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        if extremes:
            low, high = min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])
            out.extend(sorted({low, high}))
        else:
            out.append(chunk[-1])
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


def nice_step(span: float, count: int) -> float:
    """A 1, 2 or 5 times a power of ten that cuts SPAN into at most COUNT parts."""
    raw = span / max(count, 1)
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def integer_ticks(low: float, high: float, count: int) -> list[int]:
    """Whole-number ticks from LOW to HIGH, at most about COUNT of them (the ends when few fit)."""
    first, last = math.ceil(low), math.floor(high)
    if last <= first:
        return [first] if first <= high else [round(low)]
    step = max(1, int(nice_step(last - first, max(count, 1))))
    ticks = [t for t in range(first - first % step, last + 1, step) if first <= t <= last]
    return ticks if len(ticks) >= 2 else [first, last]


def value_ticks(low: float, high: float, count: int) -> list[float]:
    """Round ticks from LOW to HIGH, at most about COUNT (at least 2: the ends, rounded, when few fit)."""
    if high <= low:
        return [low]
    step = nice_step(high - low, max(count, 1))
    ticks, value = [], math.ceil(low / step) * step
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if len(ticks) < 2:
        ticks = [float(f"{low:.2g}"), float(f"{high:.2g}")]
    return ticks


def format_tick(value: float, scientific: bool = False) -> str:
    """`3e-5`, `2.5e-5` for tiny values (never `0.0000321`); `1910`, not `1910.0`; else short decimals."""
    if value == 0:
        return "0"
    if scientific:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


class AnsiLines:
    """Plotext's picture (text with SGR colour codes) as Textual strips, cell for cell what Textual makes of
    `Text.from_ansi(picture)`.

    Reading the picture as Rich text and Textual's conversion of that text to strips were half the app's
    work while it followed a training (a profile of the app at 80x24). A chart's lines hold a handful of
    distinct codes, so each style change is looked up once, through Rich's own decoder (`AnsiDecoder`),
    and each style's final look once, through Textual's (`Style.from_rich_style` with the app's ANSI
    theme, over the widget's own style), and kept."""

    def __init__(self) -> None:
        self._after: dict[tuple[RichStyle, str], RichStyle] = {}
        self._looks: dict[tuple[RichStyle, VisualStyle, Any], RichStyle] = {}

    def style_after(self, style: RichStyle, params: str) -> RichStyle:
        """The style in effect after the SGR sequence with PARAMS, with STYLE in effect before it (Rich's reading)."""
        key = (style, params)
        after = self._after.get(key)
        if after is None:
            decoder = AnsiDecoder()
            decoder.style = style
            decoder.decode_line(f"\x1b[{params}m")
            after = self._after[key] = decoder.style
        return after

    def look(self, style: RichStyle, base: VisualStyle, ansi_theme: Any) -> RichStyle:
        """What the screen draws for text in the decoded STYLE over BASE (Textual's reading)."""
        key = (style, base, ansi_theme)
        look = self._looks.get(key)
        if look is None:
            look = self._looks[key] = (base + VisualStyle.from_rich_style(style, ansi_theme)).rich_style
        return look

    def strips(self, ansi: str, width: int, height: int, base: VisualStyle, ansi_theme: Any) -> list[Strip]:
        """HEIGHT lines of WIDTH cells of the picture ANSI over BASE (the widget's own style)."""
        out: list[Strip] = []
        blank = base.rich_style
        style = RichStyle.null()  # Rich's decoder carries a style from one line to the next
        for y, line in enumerate(ansi.split("\n")[:height]):
            segments: list[Segment] = []
            for index, part in enumerate(_SGR.split(line)):
                if index % 2:
                    style = self.style_after(style, part)
                elif part:
                    segments.append(Segment(part, self.look(style, base, ansi_theme)))
            # each piece's offset, as Textual gives its text (for selection; and a screenshot reads the same)
            out.append(Strip(segments).adjust_cell_length(width, blank).apply_offsets(0, y))
        out.extend(Strip.blank(width, blank) for _ in range(height - len(out)))
        return out


class TimedPlot(PlotextPlot):
    """A plotext chart that redraws on a timer, at most REDRAW_HZ times a second, and only
    when its data changed; subclasses draw in `draw`. Its lines go straight from plotext's text to strips
    (`AnsiLines`), kept until the data, the size or the theme change."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.redraws = 0
        self._dirty = True
        self._picture: tuple[Any, Text] | None = None
        self._lines: tuple[Any, list[Strip]] | None = None
        self._ansi = AnsiLines()

    def on_mount(self) -> None:
        super().on_mount()
        self.theme = "clear" if self.app.no_color else "auto"  # type: ignore[assignment]
        ticker(self.app).add(self.redraw_if_dirty)
        self.redraw_if_dirty()

    def on_unmount(self) -> None:
        ticker(self.app).remove(self.redraw_if_dirty)

    def mark_dirty(self) -> None:
        self._dirty = True

    def redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        self.refresh()

    def look_key(self) -> tuple[Any, ...]:
        """What the picture's look depends on beside the data: the app's theme, and whether textual-plotext
        has registered its plot theme yet (it does so in a message after the app's theme changes, and a
        picture built before that is in plotext's fallback colours)."""
        return (self.app.theme, self._get_plotext_theme_name(self.app.theme) in plotext_themes)

    def render(self) -> Text:
        """The picture as Rich text (what PlotextPlot renders; the screen takes `render_line`'s strips)."""
        key = (self.size, self.redraws, self.look_key())
        if self._picture is None or self._picture[0] != key:
            self.prepare_figure()
            self._picture = (key, cast(Text, super().render()))
        return self._picture[1]

    def prepare_figure(self) -> None:
        self.plt.clear_data()
        self.plt.clear_figure()
        self.plt.plotsize(self.size.width, self.size.height)
        self.draw(self.plt, self.size.width, self.size.height)

    def build(self) -> str:
        """Plotext's picture at this size and theme, as PlotextPlot.render builds it before reading it as Text."""
        width, height = self.size
        self.prepare_figure()
        self.plt.plotsize(width, height)
        self.plt._set_size(width, height)
        self.plt.theme(self._get_plotext_theme_name(self.app.theme))
        return str(self.plt.build())

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        base = self.visual_style
        key = (self.size, self.redraws, self.look_key(), base)
        if self._lines is None or self._lines[0] != key:
            self._lines = (key, self._ansi.strips(self.build(), width, height, base, self.app.ansi_theme))
        lines = self._lines[1]
        return lines[y] if 0 <= y < len(lines) else Strip.blank(width, base.rich_style)

    def draw(self, plt: Any, width: int, height: int) -> None:
        raise NotImplementedError


class SeriesChart(TimedPlot):
    """Line chart of named (x, y) series, e.g. the loss with its smoothed curve.

    SMOOTHED series are drawn as their moving average (`smoothing`, changeable), with the raw
    points under them when RAW_MARKER is given. `log_y` draws the y axis in log scale.
    """

    def __init__(
        self,
        title: str,
        series: Sequence[str],
        *,
        xlabel: str = "",
        ylim: tuple[float, float] | None = None,
        max_points: int = MAX_POINTS,
        markers: Sequence[str] | None = None,
        labels: Sequence[str] = (),
        smoothed: Sequence[str] = (),
        raw_marker: str | None = None,
        scientific: bool = False,
        legend: bool = True,
        id: str | None = None,  # noqa: A002 (Textual's widget argument)
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.xlabel = xlabel
        self.ylim = ylim
        self.series: dict[str, deque[Point]] = {name: deque(maxlen=max_points) for name in series}
        self.markers = dict(zip(series, markers or ["braille"] * len(series), strict=False))
        self.labels = dict(zip(series, labels or series, strict=False))
        self.smoothed = set(smoothed)
        self.raw_marker = raw_marker
        self.smoothing = SMOOTHING
        self.log_y = False
        self.scientific = scientific
        self.legend = legend
        self.highlight: tuple[Point, str] | None = None  # one marked point (the best epoch) and its glyph
        self.x_range: tuple[float, float] | None = None  # at least this x range (the planned epochs)

    def add(self, name: str, x: float, y: float) -> None:
        self.series[name].append((x, y))
        self._dirty = True

    def clear_series(self) -> None:
        for points in self.series.values():
            points.clear()
        self.highlight = None
        self.x_range = None
        self._dirty = True

    def points(self, name: str) -> int:
        return len(self.series[name])

    def drawn(self, name: str) -> list[Point]:
        """The points of NAME as drawn: smoothed if it is a smoothed series."""
        points = list(self.series[name])
        if name in self.smoothed and self.smoothing > 0:
            ys = smooth([y for _, y in points], self.smoothing)
            points = [(x, y) for (x, _), y in zip(points, ys, strict=True)]
        return points

    def legend_parts(self) -> list[tuple[str, str, str]]:
        """(glyph, label, short label) per drawn thing, the marked point last."""
        parts = []
        for name in self.series:
            glyph = GLYPHS.get(self.markers[name], self.markers[name])
            if name in self.smoothed and self.raw_marker:
                parts.append((GLYPHS.get(self.raw_marker, self.raw_marker), "raw", "raw"))
                label = f"ema {self.smoothing:g}" if self.smoothing else "line"
                parts.append((glyph, label, label.replace(" ", "")))
            else:
                parts.append((glyph, self.labels[name], self.labels[name]))
        if self.highlight:
            parts.append(("★", self.highlight[1], self.highlight[1].split()[-1]))
        return parts

    def title_for(self, width: int) -> str:
        """The title and the legend, as much of it as fits WIDTH (plotext drops a title that does not)."""
        title = self.title + (" (log)" if self.log_y else "")
        if not any(self.series.values()):
            title += " (none)"
        room = width - 8  # the title is centred over the plot area, right of the y ticks
        if not self.legend:
            return title if len(title) <= room else self.title[:room]
        parts = self.legend_parts()
        candidates = [
            f"{title}  " + " ".join(f"{g} {label}" for g, label, _ in parts),
            f"{title} " + " ".join(f"{g}{short}" for g, _, short in parts),
            " ".join(f"{g}{short}" for g, _, short in parts),
            " ".join(f"{g}{short}" for g, _, short in parts[-1:]),
            title,
        ]
        if self.log_y:  # the scale is news: the title that says "log" before any legend
            candidates = [*candidates[:2], title, f"{self.title[: max(1, room - 6)]} (log)"]
        return next((c for c in candidates if len(c) <= room), title[:room])

    def draw(self, plt: Any, width: int, height: int) -> None:
        plt.title(self.title_for(width))
        if height >= 14:  # a short chart spends no row on it: the ticks say steps or epochs
            plt.xlabel(self.xlabel)
        buckets = max(8, width - 8)  # about a point per column (braille has 2)
        drawn: list[Point] = []  # every point plotted, and the ends of each series, for the axes
        for name in self.series:
            points = self.drawn(name)
            if not points:
                continue
            if name in self.smoothed and self.raw_marker:
                raw = thin(list(self.series[name]), buckets // 2, extremes=True)
                plot_points(plt, raw, self.raw_marker, self.log_y)
                drawn += raw
            drawn += [points[0], points[-1]]
            points = thin(points, buckets)
            drawn += points
            plot_points(plt, points, self.markers[name], self.log_y)
        if self.highlight and drawn:
            (x, y), _ = self.highlight
            plt.scatter([x], [y], marker="★")
            drawn.append((x, y))
        if not drawn:
            return
        self.set_axes(plt, drawn, width, height)

    def set_axes(self, plt: Any, drawn: list[Point], width: int, height: int) -> None:
        xs = [x for x, _ in drawn]
        low, high = min(xs), max(xs)
        if self.x_range:
            low, high = min(low, self.x_range[0]), max(high, self.x_range[1])
        if high - low < 1:  # one epoch so far: room on both sides, not a point in a corner
            low, high = low - 0.5, high + 0.5
        plt.xlim(low, high)
        ticks = integer_ticks(low, high, max(2, width // 9))
        plt.xticks(ticks, [str(t) for t in ticks])
        ys = [y for _, y in drawn]
        y_low, y_high = self.ylim if self.ylim else (min(ys), max(ys))
        if self.ylim:
            y_low, y_high = min(y_low, min(ys)), max(y_high, max(ys))
            plt.ylim(y_low, y_high)
        if self.log_y:
            return  # plotext's log ticks are the values themselves
        # A short chart has too few rows for inner ticks to sit on the row of their value (0.5 drawn
        # beside points at 0.7): only the ends, which are exact, under 10 rows.
        y_ticks = value_ticks(y_low, y_high, max(2, (height - 4) // 2)) if height >= 10 else [y_low, y_high]
        scientific = self.scientific or 0 < max(abs(y_low), abs(y_high)) < 1e-2
        plt.yticks(y_ticks, [format_tick(v, scientific) for v in y_ticks])


def plot_points(plt: Any, points: list[Point], marker: str, log_y: bool) -> None:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    if log_y:
        keep = [i for i, y in enumerate(ys) if y > 0]  # log scale: zero or negative values cannot be drawn
        xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
        plt.yscale("log")
    if len(xs) == 1:  # a single point: a short level line, not a lone dot
        xs, ys = [xs[0] - 0.3, xs[0] + 0.3], [ys[0], ys[0]]
    if xs:
        plt.plot(xs, ys, marker=marker)


class Histogram(TimedPlot):
    """Histogram of integers (token lengths), with whole-number ticks."""

    def __init__(self, title: str, *, bins: int = 24, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.title = title
        self.bins = bins
        self.values: list[int] = []

    def set_values(self, values: Sequence[int]) -> None:
        self.values = list(values)
        self._dirty = True

    def draw(self, plt: Any, width: int, height: int) -> None:
        plt.title(self.title)
        if not self.values:
            return
        low, high = min(self.values), max(self.values)
        bins = max(1, min(self.bins, high - low + 1, width - 8))
        size = (high - low + 1) / bins
        counts = [0] * bins
        for value in self.values:
            counts[min(bins - 1, int((value - low) / size))] += 1
        centres = [low + (i + 0.5) * size - 0.5 for i in range(bins)]
        plt.bar(centres, counts, width=0.9 * size if size > 1 else 0.9)
        x_ticks = integer_ticks(low, high, max(2, width // 8))
        plt.xticks(x_ticks, [str(t) for t in x_ticks])
        y_ticks = [t for t in integer_ticks(0, max(counts), max(2, (height - 4) // 2))]
        plt.yticks(y_ticks, [str(t) for t in y_ticks])
