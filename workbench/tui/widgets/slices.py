"""Where a model fails, beside the per-source table: by sentence length (a table), by confidence
(a reliability diagram with its ECE) and MCC against the decision threshold (the one in use marked).

The charts are `TimedPlot`s (textual-plotext widgets that redraw on a timer, never through the
global plotext module); `SlicesView` shows one of the four views at a time (`s` cycles), so each
stays legible at 80x24.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, DataTable

from workbench.tui.widgets.charts import TimedPlot

VIEWS = ("sources", "length", "reliability", "threshold", "phenomena")
FEATURE_WIDTH = 14  # of the grammar table's feature column
LENGTH_HEADERS = ("tokens", "n", "MCC", "acc", "err")
GRAMMAR_HEADERS = ("feature", "MCC", "n", "95%")
VIEW_TITLES = {
    "sources": "per source",
    "length": "by length (tokens)",
    "reliability": "reliability",
    "threshold": "MCC by threshold",
    "phenomena": "grammar (enter filters)",
}


class ReliabilityChart(TimedPlot):
    """Accuracy against mean confidence per bin (the diagonal: perfectly calibrated), ECE in the title."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.reliability: Any = None

    def set_reliability(self, reliability: Any) -> None:
        self.reliability = reliability
        self._dirty = True

    def draw(self, plt: Any, width: int, height: int) -> None:
        if self.reliability is None:
            plt.title("reliability")
            return
        # plotext drops a title wider than the plot: the ECE first when the panel is narrow
        ece = f"ECE {self.reliability.ece:.3f}"
        plt.title(f"shipped p · {ece}" if width >= 34 else ece)  # the scale every figure is on
        plt.xlabel("confidence")
        plt.xlim(0.5, 1.0)
        plt.ylim(0.0, 1.0)
        plt.plot([0.5, 1.0], [0.5, 1.0], marker="dot", label="calibrated")
        filled = [b for b in self.reliability.bins if b.n]
        if filled:
            plt.scatter([b.mean_confidence for b in filled], [b.accuracy for b in filled], marker="o", label="accuracy")


class ThresholdChart(TimedPlot):
    """MCC when acceptable means p(acceptable) >= t (the shipped p), a vertical line at the one in use."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.curve: Any = None

    def set_curve(self, curve: Any) -> None:
        self.curve = curve
        self._dirty = True

    def draw(self, plt: Any, width: int, height: int) -> None:
        if self.curve is None:
            plt.title("MCC by threshold")
            return
        curve = self.curve
        # Both thresholds named in the title (no legend to cover the curve): │ the one in use, * the best.
        in_use, best = curve.threshold_in_use, curve.best_threshold
        titles = [
            f"│in use {in_use:.2f}: MCC {curve.mcc_in_use:.3f} · *best {best:.2f}: MCC {curve.best_mcc:.3f}",
            f"│in use {in_use:.2f}: MCC {curve.mcc_in_use:.3f} *best {best:.2f}",
            f"│in use {in_use:.2f} *best {best:.2f}",
            f"│{in_use:.2f} *{best:.2f}",
        ]
        plt.title(next((title for title in titles if len(title) <= width - 8), titles[-1]))  # plotext drops a wider one
        plt.xlabel("threshold on the shipped p(acceptable) · y: MCC")
        plt.xlim(0.0, 1.0)
        # the y axis starts at 0 (or below, for a negative MCC): a range of 0.20-0.27 would make a flat
        # curve look steep
        low = min(0.0, float(min(curve.mcc)))
        high = max(float(max(curve.mcc)), low + 0.1)
        plt.ylim(low, high + 0.05 * (high - low))
        plt.plot(curve.thresholds, curve.mcc, marker="braille")
        plt.vline(curve.threshold_in_use)
        plt.scatter([curve.best_threshold], [curve.best_mcc], marker="*")


def length_rows(slices: Any) -> list[tuple[str, str, str, str, str]]:
    """One row per token-length bucket: bucket, n, MCC, accuracy, errors (— for an empty bucket). The MCC
    before the accuracy, as in the per-source table: the first figure to stay in view in a narrow panel."""
    rows = []
    for row in slices.by_length:
        if row.n:
            rows.append((row.name, str(row.n), f"{row.mcc:.2f}", f"{row.accuracy:.2f}", str(row.errors)))
        else:
            rows.append((row.name, "0", "—", "—", "0"))
    return rows


def whole_columns(headers: list[str], rows: list[tuple[Any, ...]], width: int, keep: int = 2) -> int:
    """How many of the columns (HEADERS, cells ROWS) a DataTable shows whole in WIDTH columns (0: any
    number), at least KEEP: the length table read "tokens n acc M" at 60 columns."""
    if width <= 0:
        return len(headers)
    used = 0
    for index, header in enumerate(headers):
        cells = [Text(header).cell_len, *(Text(str(row[index])).cell_len for row in rows)]
        used += max(cells) + 2  # (a DataTable column's padding)
        if used > width and index >= keep:
            return index
    return len(headers)


def fill(table: DataTable[Any], headers: list[str], rows: list[tuple[Any, ...]], width: int) -> None:
    """TABLE emptied and filled with the columns of HEADERS and ROWS that show whole in WIDTH."""
    shown = whole_columns(headers, rows, width)
    table.clear(columns=True)
    table.add_columns(*headers[:shown])
    table.add_rows([row[:shown] for row in rows])


class SlicesView(Vertical):
    """The per-source table and the three slices of one evaluation, one at a time. Where the panel is
    narrow, a table's columns that would show in part are left out (the MCC comes before them)."""

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.view = VIEWS[0]
        self.redraws: dict[str, Callable[[], None]] = {}  # per table, how it was last filled (again at a resize)
        self.drawn_width = 0

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="eval-sources", id="eval-slices-switcher"):
            yield DataTable(id="eval-sources", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="eval-lengths", cursor_type="row", zebra_stripes=True)
            yield ReliabilityChart(id="eval-reliability")
            yield ThresholdChart(id="eval-threshold")
            yield DataTable(id="eval-phenomena", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#eval-lengths", DataTable).add_columns(*LENGTH_HEADERS)
        self.grammar_columns(self.query_one("#eval-phenomena", DataTable))
        self.phenomena_features: list[str] = []
        self.show_title()

    def show_title(self) -> None:
        position = VIEWS.index(self.view) + 1
        self.border_title = f"s: {VIEW_TITLES[self.view]} ({position}/{len(VIEWS)})"

    def widget_id(self, view: str) -> str:
        return {
            "sources": "eval-sources",
            "length": "eval-lengths",
            "reliability": "eval-reliability",
            "threshold": "eval-threshold",
            "phenomena": "eval-phenomena",
        }[view]

    def next_view(self) -> str:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.query_one(ContentSwitcher).current = self.widget_id(self.view)
        self.show_title()
        return self.view

    def on_resize(self) -> None:
        if self.size.width != self.drawn_width:
            for redraw in list(self.redraws.values()):
                redraw()

    def table_width(self) -> int:
        """The columns a table has (its vertical scrollbar takes one); 0 before the first layout (the
        resize that follows draws the tables again)."""
        self.drawn_width = self.size.width
        return max(0, self.size.width - 1)

    def show_groups(self, groups: list[Any]) -> None:
        """A minimal-pair suite's accuracy per paradigm (core.explore.pairs.GroupScore), worst first, in
        the first table."""
        self.redraws["sources"] = lambda: self.show_groups(groups)
        fill(
            self.query_one("#eval-sources", DataTable),
            ["paradigm", "n", "right", "acc"],
            [(Text(group.name), str(group.n), str(group.right), f"{group.accuracy:.2f}") for group in groups],
            self.table_width(),
        )

    def show(self, per_source: list[dict[str, Any]], slices: Any) -> None:
        self.redraws["sources"] = lambda: self.show(per_source, slices)
        fill(
            self.query_one("#eval-sources", DataTable),
            ["source", "n", "MCC", "acc"],
            [
                (Text(str(row["source"])), str(row["n"]), f"{row['mcc']:.2f}", f"{row['accuracy']:.2f}")
                for row in per_source
            ],
            self.table_width(),
        )
        fill(
            self.query_one("#eval-lengths", DataTable),
            list(LENGTH_HEADERS),
            length_rows(slices) if slices is not None else [],
            self.table_width(),
        )
        self.query_one(ReliabilityChart).set_reliability(slices.reliability if slices is not None else None)
        self.query_one(ThresholdChart).set_curve(slices.threshold if slices is not None else None)

    def clear(self) -> None:
        self.show([], None)
        self.show_phenomena(None, "")

    def show_phenomena(self, report: Any, note: str) -> None:
        """MCC per grammatical feature (core/evaluation/phenomena.py): the major features, then the minor
        ones indented; `1 cls` marks a feature whose sentences all have one gold label. NOTE when none."""
        self.redraws["phenomena"] = lambda: self.show_phenomena(report, note)
        table = self.query_one("#eval-phenomena", DataTable)
        table.clear(columns=True)
        self.phenomena_features = []
        if report is None:
            if note:  # one column, the note whole
                table.add_column("grammar")
                table.add_row(Text(note))
                self.phenomena_features.append("")
            return
        rows = []
        for kind in ("major", "minor"):
            for score in report.scores:
                if score.kind != kind:
                    continue
                name = score.feature if kind == "major" else f" {score.feature}"
                mcc = "1 cls" if score.one_class else ("—" if not score.n else f"{score.mcc:+.2f}")
                interval = "" if score.one_class or not score.n else f"{score.mcc_low:+.2f}…{score.mcc_high:+.2f}"
                if len(name) > FEATURE_WIDTH:
                    name = name[: FEATURE_WIDTH - 1] + "…"
                rows.append((Text(name), mcc, str(score.n), interval))
                self.phenomena_features.append(score.feature)
        shown = whole_columns(["feature".ljust(FEATURE_WIDTH), *GRAMMAR_HEADERS[1:]], rows, self.table_width())
        self.grammar_columns(table, shown)
        table.add_rows([row[:shown] for row in rows])

    @staticmethod
    def grammar_columns(table: DataTable[Any], shown: int = len(GRAMMAR_HEADERS)) -> None:
        """The feature's name cut to FEATURE_WIDTH, so that its MCC and n stay in view in the 30 columns the
        panel has at 80x24 (names run to 27 characters); then SHOWN of the others (the 95% interval where
        there is room)."""
        table.add_column(GRAMMAR_HEADERS[0], width=FEATURE_WIDTH)
        table.add_columns(*GRAMMAR_HEADERS[1:shown])

    def phenomenon_at(self, row: int) -> str:
        """The feature on row ROW of the grammar table ('' for none)."""
        return self.phenomena_features[row] if 0 <= row < len(self.phenomena_features) else ""
