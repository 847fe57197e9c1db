"""1 Data: browse a split, filter by label and source, search, stats, token lengths, and the
highlighted sentence in full with its label, source and WordPiece tokens. The training split shows the
review's decisions (the label-overrides file, screens/review.py) in its label column."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Input, Static, Tabs

from workbench.core.base.config import LABELS
from workbench.tui.keys import Field
from workbench.tui.messages import DataLoaded, SentenceHighlighted, StatusChanged, TokenizerLoaded, TokenLengths
from workbench.tui.panes.base import Pane
from workbench.tui.style import tone
from workbench.tui.widgets.charts import Histogram
from workbench.tui.widgets.sentence_table import SentenceTable, decision_text, label_cell

SPLITS = ("train", "validation", "in_domain_dev", "holdout")
LABEL_FILTERS: tuple[int | None, ...] = (None, 1, 0)
LABEL_NAMES = {None: "all", 1: "acceptable", 0: "unacceptable"}


class DataPane(Pane):
    """The chosen split in a table, with filters, stats and a token-length histogram."""

    BINDINGS = [
        Binding("s", "next_split", "Split", tooltip="next split: train, validation, in_domain_dev, holdout"),
        Binding("l", "next_label", "Label", tooltip="label filter: all, acceptable, unacceptable"),
        Binding("o", "next_source", "Source", tooltip="source filter: all, then each source of the split"),
        Binding("slash", "search", "Search", tooltip="search sentences (enter keeps it, escape clears it)"),
        Binding("t", "toggle_stats", "Stats", tooltip="show / hide the stats and token-length histogram"),
        Binding("m", "training_map", "Map", tooltip="the opened run's map of its training data (cartography)"),
        Binding("i", "label_issues", "Issues", tooltip="the likely label errors (workbench data issues), to review"),
        Binding("escape", "leave_field", "Clear search", tooltip="clear the search / leave the search box"),
    ]
    HELP = (
        "↑↓ pgup/pgdn home/end browse; the box below shows the highlighted sentence whole, with its label, "
        "source and WordPiece tokens (tab, then ↑↓ scrolls it).\n"
        "The stats panel (counts, sources, token-length histogram) shows at 110 columns and more, or with t."
    )

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.cola: Any = None
        self.source_name = ""
        self.split = "train"
        self.label_filter: int | None = None
        self.source_filter: str | None = None
        self.search_text = ""
        self.tokenizer: Any = None
        self.lengths: dict[str, list[int]] = {}
        self.shown: Any = None  # the filtered DataFrame on screen
        self.decisions: dict[int, Any] = {}  # the label-overrides file's decisions by line (core Override)
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="data-left"):
                yield Static("loading CoLA…", id="data-filters")
                yield Field(
                    placeholder="search sentences (enter: keep, escape: clear)",
                    id="data-search",
                    compact=True,
                    select_on_focus=False,
                )
                table = SentenceTable(id="data-table")
                table.loading = True
                yield table
                with VerticalScroll(id="data-detail"):
                    yield Static("", id="data-tokens")
            with Vertical(id="data-right"):
                yield Static("", id="data-stats")
                yield Histogram("token lengths", id="data-hist")

    @property
    def table(self) -> SentenceTable:
        return self.query_one("#data-table", SentenceTable)

    def on_mount(self) -> None:
        self.query_one("#data-search").display = False

    def focus_default(self, leaving_field: bool = False) -> None:
        self.focus_on(self.table)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return self.in_field() or bool(self.search_text)
        return True

    # ------------------------------------------------------------ loading (workers)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data", name="load data")
    def load(self, data: str | None, model: str) -> None:
        """Load CoLA (pandas) and then the tokenizer (the tokenizers library alone) off the screen thread."""
        self.post_message(StatusChanged(f"loading data {data or '(bundled CoLA)'}…"))
        from workbench.core.data.cola import load_cola

        cola = load_cola(data or None)
        self.post_message(DataLoaded(cola, str(cola.folder)))
        self.post_message(StatusChanged(f"loading the tokenizer of {model}…"))
        from workbench.core.model.loading import load_word_pieces

        tokenizer = load_word_pieces(model)
        self.post_message(TokenizerLoaded(tokenizer, model))
        self.post_message(StatusChanged("ready"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="lengths", name="token lengths")
    def measure(self, split: str, sentences: list[str]) -> None:
        from workbench.core.data.cola import token_lengths

        self.post_message(TokenLengths(split, token_lengths(self.tokenizer, sentences)))

    def on_data_loaded(self, message: DataLoaded) -> None:
        self.cola = message.cola
        self.source_name = message.source
        self.lengths.clear()
        self.source_filter = None
        table = self.table
        table.loading = False
        if self.workbench.active_pane == "data" and (
            self.app.focused in (None, self) or isinstance(self.app.focused, Tabs)
        ):
            table.focus()  # it was loading: the pane held the focus for it
        self.read_decisions()
        self.refresh_table()
        self.measure_split()

    def on_tokenizer_loaded(self, message: TokenizerLoaded) -> None:
        self.tokenizer = message.tokenizer
        self.measure_split()
        self.show_detail()

    def on_token_lengths(self, message: TokenLengths) -> None:
        self.lengths[message.split] = message.lengths
        if message.split == self.split:
            self.query_one(Histogram).set_values(message.lengths)
            self.show_stats()

    def measure_split(self) -> None:
        if self.cola is None or self.tokenizer is None or self.split in self.lengths:
            return
        self.measure(self.split, self.cola[self.split]["sentence"].tolist())

    # ------------------------------------------------------------ the review's decisions

    def read_decisions(self) -> None:
        """The label-overrides file's decisions (none while it is missing); a bad file is told, naming its line."""
        from workbench.core.data.cola import DataError
        from workbench.core.data.overrides import read_overrides

        path = self.session.overrides_file
        try:
            found = read_overrides(path) if path.exists() else []
        except DataError as err:
            self.notify(f"label overrides not shown: {err}", severity="error", timeout=10)
            found = []
        self.decisions = {o.line: o for o in found}

    def set_decisions(self, overrides: list[Any]) -> None:
        """A review screen changed the decisions: the table shows them."""
        self.decisions = {o.line: o for o in overrides}
        if self.cola is not None:
            self.table.set_decisions(self.decisions if self.split == "train" else {})
            self.show_detail()

    # ------------------------------------------------------------ filters

    def filtered(self) -> Any:
        frame = self.cola[self.split]
        if self.label_filter is not None:
            frame = frame[frame["label"] == self.label_filter]
        if self.source_filter is not None:
            frame = frame[frame["source"] == self.source_filter]
        if self.search_text:
            frame = frame[frame["sentence"].str.contains(self.search_text, case=False, regex=False)]
        return frame

    def refresh_table(self) -> None:
        if self.cola is None:
            return
        self.shown = self.filtered()
        rows = zip(
            self.shown["line"].tolist(),
            self.shown["source"].tolist(),
            self.shown["label"].tolist(),
            self.shown["sentence"].tolist(),
            strict=True,
        )
        # decisions apply to training sentences: a decided sentence the split put in validation is not changed
        self.table.set_decisions(self.decisions if self.split == "train" else {})
        self.table.set_rows(list(rows))
        total = len(self.cola[self.split])
        header = Text()
        header.append(self.split, style="bold")
        header.append(
            f" {len(self.shown):,}/{total:,} · label {LABEL_NAMES[self.label_filter]}"
            f" · src {self.source_filter or 'all'}"
        )
        if self.search_text:
            header.append(f" · search {self.search_text!r}")
        self.query_one("#data-filters", Static).update(header)
        self.show_stats()

    def show_stats(self) -> None:
        if self.cola is None:
            return
        from workbench.core.data.cola import describe  # pandas is loaded by now

        frame = self.cola[self.split]
        stats = describe(frame, self.lengths.get(self.split))
        text = Text()
        text.append(self.split, style="bold")
        text.append(
            f"  {stats['rows']:,} rows\n"
            f"acceptable   {stats['acceptable']:>5,} {stats['acceptable_share']:6.1%}\n"
            f"unacceptable {stats['unacceptable']:>5,} {1 - stats['acceptable_share']:6.1%}\n"
        )
        if "token_lengths" in stats:
            t = stats["token_lengths"]
            text.append(f"tokens p50 {t['p50']} p90 {t['p90']} max {t['max']}\n")
        sources = stats["sources"]
        shown = sorted(sources.items(), key=lambda kv: -kv[1])[:6]
        text.append(
            "sources: "
            + " ".join(f"{name} {count}" for name, count in shown)
            + (f" +{len(sources) - 6} more" if len(sources) > 6 else "")
        )
        self.query_one("#data-stats", Static).update(text)

    def show_detail(self) -> None:
        """The highlighted sentence whole, its label and source, and its WordPiece tokens."""
        target = self.query_one("#data-tokens", Static)
        table = self.table
        if not table.row_count:
            target.update("no sentence matches" if self.shown is not None else "")
            return
        line, source, label, sentence = table.get_row_at(table.cursor_row)
        text = Text(sentence, style="bold")
        text.append("\n")
        text.append_text(label_cell(label))
        text.append(f" {LABELS[label]} · source {source} · line {line}\n")
        decided = table.decision_of(line, sentence)
        if decided is not None:
            text.append_text(decision_text(decided))
            text.append(f" in {self.session.overrides_file}\n")
        if self.tokenizer is None:
            target.update(text + Text("tokens: loading the tokenizer…", style=tone("muted")))
            return
        from workbench.core.model.loading import tokenize

        pieces = tokenize(self.tokenizer, sentence)
        text.append(f"{len(pieces)} tokens:", style="bold")
        for token, token_id in pieces:
            text.append(f" {token}")
            text.append(f":{token_id}", style=tone("muted"))
        target.update(text)
        self.query_one("#data-detail", VerticalScroll).scroll_home(animate=False)

    def on_sentence_highlighted(self, message: SentenceHighlighted) -> None:
        self.show_detail()

    def action_next_split(self) -> None:
        self.set_split(SPLITS[(SPLITS.index(self.split) + 1) % len(SPLITS)])

    def set_split(self, split: str) -> None:
        self.split = split
        self.source_filter = None
        self.refresh_table()
        self.query_one(Histogram).set_values(self.lengths.get(split, []))
        self.measure_split()

    def action_next_label(self) -> None:
        self.label_filter = LABEL_FILTERS[(LABEL_FILTERS.index(self.label_filter) + 1) % len(LABEL_FILTERS)]
        self.refresh_table()

    def action_next_source(self) -> None:
        if self.cola is None:
            return
        sources: list[str | None] = [None, *sorted(self.cola[self.split]["source"].unique().tolist())]
        self.source_filter = sources[(sources.index(self.source_filter) + 1) % len(sources)]
        self.refresh_table()

    def action_training_map(self) -> None:
        """The opened run's map of its training data (a screen: scatter, regions, trajectories)."""
        from workbench.tui.screens.training_map import TrainingMapScreen

        run = self.session.current_run
        if run is None:
            self.notify("open a run first (Runs pane): the map is recorded by its training", severity="warning")
            return
        self.app.push_screen(TrainingMapScreen(self.session.runs_dir / run, self.session.overrides_file))

    def action_label_issues(self) -> None:
        """The runs folder's newest likely label errors (a screen to review them)."""
        from workbench.tui.screens.label_issues import LabelIssuesScreen

        self.app.push_screen(LabelIssuesScreen(self.session.runs_dir, self.session.overrides_file))

    def action_toggle_stats(self) -> None:
        shown = self.query_one("#data-right").display
        self.set_class(not shown, "-stats")
        self.set_class(shown, "-no-stats")

    def action_search(self) -> None:
        search = self.query_one("#data-search", Input)
        search.display = True
        search.focus()

    def action_leave_field(self) -> None:
        """Escape: clear the search and leave the search box."""
        search = self.query_one("#data-search", Input)
        search.value = ""
        search.display = False
        if self.search_text:
            self.search_text = ""
            self.refresh_table()
        self.focus_default()

    @on(Input.Changed, "#data-search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(0.25, lambda: self.apply_search(event.value))

    def apply_search(self, text: str) -> None:
        if text.strip() != self.search_text:
            self.search_text = text.strip()
            self.refresh_table()

    @on(Input.Submitted, "#data-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.apply_search(event.value)
        if not event.value.strip():
            self.query_one("#data-search").display = False
        self.focus_default()
