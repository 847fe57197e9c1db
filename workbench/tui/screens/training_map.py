"""The map of the training data (dataset cartography) of the opened run, opened from the Data pane (`m`).

A plotext scatter of every training sentence, confidence (mean p(gold) over epochs) against variability
(its standard deviation), the marker saying how often the model got it right (+ mostly, o sometimes,
x rarely: legible without colour); below it the sentences of one region (`r`: all, easy, ambiguous,
hard) and the highlighted one's p(gold) epoch by epoch. Read by a worker from the run's
training_dynamics.npz (core/explore/cartography.py); a run without one gets a line saying why.
Its sentences' labels are reviewed here (screens/review.py: f flip, d drop, k keep, n note, u undo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from workbench.tui.messages import SentenceHighlighted, TrainingMapRead
from workbench.tui.screens.review import Reviewed, ReviewScreen
from workbench.tui.widgets.charts import TimedPlot
from workbench.tui.widgets.sentence_table import SentenceTable, decision_cell, decision_text

REGION_FILTERS: tuple[str | None, ...] = (None, "hard", "ambiguous", "easy")
MAX_POINTS = 4000  # plotted (an even sample above it); the table lists every sentence
# correctness buckets and their markers: distinct characters, so the map reads without colour
MARKERS = (("mostly right", "+", 2 / 3, 1.01), ("sometimes", "o", 1 / 3, 2 / 3), ("rarely right", "x", -0.01, 1 / 3))


class MapChart(TimedPlot):
    """Confidence (y) against variability (x), one marker per correctness bucket. The markers are named
    in the title, never in a legend over the plot: plotext draws one in the top left corner, where the
    points of a one-epoch map all are (variability 0)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.table: Any = None

    def set_table(self, table: Any) -> None:
        self.table = table
        self._dirty = True

    def draw(self, plt: Any, width: int, height: int) -> None:
        plt.xlabel("variability")
        plt.ylabel("confidence")
        if self.table is None or not len(self.table):
            plt.title("map of the training data")
            return
        table = self.table.dropna(subset=["confidence"])
        if len(table) > MAX_POINTS:
            table = table.iloc[:: -(-len(table) // MAX_POINTS)]
        plt.title("confidence vs variability · + mostly right, o sometimes, x rarely")
        plt.ylim(0.0, 1.0)
        plt.xlim(0.0, max(0.05, float(table["variability"].max()) * 1.05))
        for _name, marker, low, high in MARKERS:
            part = table[(table["correctness"] > low) & (table["correctness"] <= high)]
            if len(part):
                plt.scatter(part["variability"].tolist(), part["confidence"].tolist(), marker=marker)


class MapTable(SentenceTable):
    """The map's sentences: confidence, variability, correctness, label (as a review decided it: `1→0`,
    `1 drop`, `1 keep`) and region, the sentence taking the rest of the width; only the rows on screen are
    drawn (a map has thousands). A row: those cells' texts, then the sentence's line in the data file."""

    COLUMNS = (("conf", 5), ("var", 5), ("right", 6), ("label", 7), ("region", 10))

    def cells(self, row: Any) -> list[Text]:
        *figures, label, region, sentence, line = row
        decided = self.decision_of(line, sentence)
        label_text = Text(label) if decided is None else decision_cell(int(label), decided.decision)
        return [*(Text(value) for value in figures), label_text, Text(region), Text(sentence)]


class TrainingMapScreen(ReviewScreen):
    """The opened run's training map; escape closes."""

    BINDINGS = [
        Binding("escape,q,m", "dismiss", "Close"),
        Binding("r", "next_region", "Region", tooltip="all / hard / ambiguous / easy"),
    ]
    TABLE, TITLE, WHAT = "map-table", "map-title", "map"

    def __init__(self, run_dir: Path, overrides_file: Path) -> None:
        super().__init__(overrides_file)
        self.run_dir = run_dir
        self.region_filter: str | None = None
        self.training_map: Any = None
        self.shown: Any = None
        self.data_labels: dict[int, int] = {}  # line -> its label in the run's data file

    def compose(self) -> ComposeResult:
        with Vertical(id="map-box"):
            yield Static("", id="map-title")
            yield MapChart(id="map-chart")
            yield MapTable(id="map-table")
            yield Static("", id="map-trajectory")
            yield from self.review_widgets()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#map-table", MapTable)
        self.query_one("#map-title", Static).update(Text(f"reading the map of {self.run_dir.name}…", style="dim"))
        table.focus()
        self.read_decisions()
        self.read_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="map", name="training map")
    def read_worker(self) -> None:
        from workbench.core.base.layout import RunError
        from workbench.core.data.cola import DataError
        from workbench.core.explore.cartography import training_map
        from workbench.core.runs.lookup import load_run_data

        try:
            mapped = training_map(self.run_dir)
            data = load_run_data(self.run_dir)
            labels = {
                int(line): int(label)
                for split in ("train", "validation")
                for line, label in zip(data[split]["line"].tolist(), data[split]["label"].tolist(), strict=True)
            }
            self.post_message(TrainingMapRead(str(self.run_dir), mapped, data_labels=labels))
        except (RunError, DataError, OSError) as err:
            self.post_message(TrainingMapRead(str(self.run_dir), None, error=str(err)))

    def on_training_map_read(self, message: TrainingMapRead) -> None:
        message.stop()
        if message.training_map is None:
            self.query_one("#map-title", Static).update(Text(message.error, style="red"))
            return
        self.training_map = message.training_map
        self.data_labels = message.data_labels
        self.query_one(MapChart).set_table(self.training_map.table)
        self.show_region()

    def show_region(self) -> None:
        mapped = self.training_map
        if mapped is None:
            return
        counts = mapped.counts()
        title = Text.assemble(
            (self.run_dir.name, "bold"),
            f" · {len(mapped.table)} sentences, {mapped.epochs_text()} · ",
            " ".join(f"{k} {v}" for k, v in counts.items()),
            f" not recorded {mapped.not_recorded}" if mapped.not_recorded else "",
            " · r: ",
            (self.region_filter or "all", "bold"),
        )
        if mapped.caveat():
            title.append(f"\n{mapped.caveat()}", style="italic")
        self.query_one("#map-title", Static).update(title)
        frame = mapped.table if self.region_filter is None else mapped.region(self.region_filter)
        key, ascending = {"easy": ("confidence", False), "ambiguous": ("variability", False)}.get(
            self.region_filter or "", ("confidence", True)
        )
        self.shown = frame.sort_values(key, ascending=ascending, kind="stable")
        table = self.query_one("#map-table", MapTable)
        table.set_rows(
            [
                (
                    f"{r.confidence:.2f}",
                    f"{r.variability:.2f}",
                    f"{r.correctness:.2f}",
                    str(r.label),
                    r.region,
                    r.sentence,
                    int(r.line),
                )
                if r.epochs
                # a stopped run's sentence never reached
                else ("—", "—", "—", str(r.label), "unrecorded", r.sentence, int(r.line))
                for r in self.shown.itertuples()
            ]
        )
        table.border_title = f"{len(self.shown)} {self.region_filter or 'sentences'}, " + (
            "most variable first"
            if self.region_filter == "ambiguous"
            else "most confident first"
            if self.region_filter == "easy"
            else "least confident first"
        )
        self.show_highlighted()

    def action_next_region(self) -> None:
        self.region_filter = REGION_FILTERS[(REGION_FILTERS.index(self.region_filter) + 1) % len(REGION_FILTERS)]
        self.show_region()

    def on_sentence_highlighted(self, message: SentenceHighlighted) -> None:
        message.stop()
        self.show_highlighted()

    def show_highlighted(self) -> None:
        """The highlighted sentence's p(gold) in each epoch."""
        view = self.query_one("#map-trajectory", Static)
        row = self.query_one("#map-table", MapTable).cursor_row
        if self.shown is None or not 0 <= row < len(self.shown):
            view.update("")
            return
        item = self.shown.iloc[row]
        values = self.training_map.trajectory(int(item["row"]))
        text = Text("p(gold) by epoch: ", style="bold")
        for epoch, value in enumerate(values, start=1):
            text.append(f"{epoch}:")
            text.append("—  " if value is None else f"{value:.2f}  ", style="bold" if value and value > 0.5 else "")
        text.append("\n")
        decided = self.decision_for(self.reviewed(item))
        if decided is not None:
            text.append_text(decision_text(decided))
            text.append(" · ")
        text.append(str(item["sentence"]))
        view.update(text)

    # ------------------------------------------------------------ the review (screens/review.py)

    def reviewed(self, item: Any) -> Reviewed:
        """ITEM (a row of the map) as a decision names it: its label in the data file, which the map's (the
        label trained with) is not where the run applied an override."""
        line = int(item["line"])
        return Reviewed(line, str(item["sentence"]), self.data_labels.get(line, int(item["label"])))

    def highlighted(self) -> Reviewed | None:
        row = self.query_one("#map-table", MapTable).cursor_row
        if self.shown is None or not 0 <= row < len(self.shown):
            return None
        return self.reviewed(self.shown.iloc[row])
