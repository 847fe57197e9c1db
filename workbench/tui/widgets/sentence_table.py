"""A table of sentences that draws only the rows on screen.

A split of CoLA has thousands of rows; a DataTable measures every cell of every row it is
given, which made a filter or split key take about a second (and queued keys overshoot).
Here setting the rows costs nothing: `render_line` draws the visible ones. The sentence
column takes whatever width the others leave, long sentences end in `…` (the pane's detail
shows them whole), and `end` lands on the last row, never below it. A sentence the review of labels
decided about (core/data/overrides.py) shows its decision in the label column, in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.tui.messages import SentenceChosen, SentenceHighlighted
from workbench.tui.style import tone

Row = tuple[int, str, int, str]  # line, source, label, sentence
COLUMNS = (("line", 5), ("src", 7), ("label", 6))  # fixed widths; the sentence takes the rest
DECIDED_LABEL_WIDTH = 7  # the label column once decisions show: "1 drop" and a space


def label_cell(label: int) -> Text:
    return Text("1 ok", style=tone("good")) if label else Text("0 *", style=tone("bad"))


def decision_cell(label: int, decision: str) -> Text:
    """LABEL as a review decided it, in text that reads without colour: `1→0` flipped, `1 drop`, `1 keep`."""
    if decision == "flip":
        return Text.assemble((str(label), "strike"), "→", (str(1 - label), "bold"))
    if decision == "drop":
        return Text.assemble((str(label), "strike"), " drop")
    return Text(f"{label} keep")


def decision_text(override: Any) -> Text:
    """`flip 1→0 · note`, `drop · note`, `keep` for a core Override: the label column's word, in full."""
    text = Text(override.decision, style="bold")
    if override.decision == "flip":
        text.append(" ")
        text.append_text(decision_cell(override.old_label, override.decision))
    if override.note:
        text.append(f" · {override.note}", style="italic")
    return text


def with_label_width(columns: tuple[tuple[str, int], ...], width: int) -> tuple[tuple[str, int], ...]:
    """COLUMNS with the `label` column WIDTH wide."""
    return tuple((name, width if name == "label" else size) for name, size in columns)


class SentenceTable(ScrollView, can_focus=True):
    """Rows of (line, source, label, sentence) with a row cursor and a fixed header line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move_to(0)", "First", show=False),
        Binding("end", "move_to(-1)", "Last", show=False),
        Binding("enter", "choose", "Choose", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"sentence-table--header", "sentence-table--cursor", "sentence-table--odd"}
    COLUMNS: ClassVar[tuple[tuple[str, int], ...]] = COLUMNS

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.rows: list[Any] = []  # Row here; a subclass's own tuples
        self.cursor_row = 0
        self.columns = self.COLUMNS  # widened while decisions show
        self.decisions: dict[int, Any] = {}  # a row's line -> its core Override (the review's decision)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def get_row_at(self, index: int) -> Any:
        return self.rows[index]

    def set_rows(self, rows: Sequence[Any]) -> None:
        """Show ROWS from the top, the cursor on the first."""
        self.rows = list(rows)
        self.cursor_row = 0
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()
        self.post_message(SentenceHighlighted(0))

    def set_decisions(self, decisions: dict[int, Any]) -> None:
        """Show DECISIONS (line -> core Override) in the label column of the rows they match: the same line
        and the same sentence (another data file's line says nothing about this one)."""
        self.decisions = decisions
        self.columns = with_label_width(self.COLUMNS, DECIDED_LABEL_WIDTH) if decisions else self.COLUMNS
        self.refresh()

    def decision_of(self, line: int, sentence: str) -> Any:
        """The decision about the sentence on LINE (a core Override), or None."""
        override = self.decisions.get(line)
        return override if override is not None and override.sentence == sentence else None

    # ------------------------------------------------------------ the cursor

    @property
    def page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_move(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * self.page)

    def action_move_to(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self.rows) - 1)

    def move_cursor(self, row: int) -> None:
        if not self.rows:
            return
        row = max(0, min(len(self.rows) - 1, row))
        if row == self.cursor_row:
            return
        self.cursor_row = row
        top = int(self.scroll_offset.y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + self.page:
            self.scroll_to(y=row - self.page + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(SentenceHighlighted(row))

    def action_choose(self) -> None:
        if self.rows:
            self.post_message(SentenceChosen(self.cursor_row))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(int(self.scroll_offset.y) + event.y - 1)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)

    # ------------------------------------------------------------ drawing

    def cells(self, row: Any) -> list[Text]:
        """ROW's cells, one per column of COLUMNS and the sentence last (a subclass with other columns
        overrides this and COLUMNS)."""
        line, source, label, sentence = row
        decided = self.decision_of(line, sentence)
        label_text = label_cell(label) if decided is None else decision_cell(label, decided.decision)
        return [Text(str(line)), Text(source), label_text, Text(sentence)]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            cells = [Text(name) for name, _ in self.columns] + [Text("sentence")]
            return self.strip(cells, width, self.get_component_rich_style("sentence-table--header"))
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        cells = self.cells(self.rows[index])
        style = self.rich_style
        if index == self.cursor_row:
            style += self.get_component_rich_style("sentence-table--cursor")
        elif index % 2:
            style += self.get_component_rich_style("sentence-table--odd")
        return self.strip(cells, width, style)

    def strip(self, cells: list[Text], width: int, style: Style) -> Strip:
        line = Text(" ")
        for cell, (_, column_width) in zip(cells, self.columns, strict=False):
            cell.truncate(column_width - 1, overflow="ellipsis", pad=True)
            line.append_text(cell)
            line.append(" ")
        rest = max(1, width - line.cell_len)
        sentence = cells[-1]
        sentence.truncate(rest, overflow="ellipsis", pad=True)
        line.append_text(sentence)
        segments = [
            Segment(text, style + seg_style if seg_style else style)
            for text, seg_style, _ in line.render(self.app.console)
        ]
        return Strip(segments).crop_extend(0, width, style)

    def rows_shown(self) -> list[Any]:
        """The rows on screen now (for tests)."""
        top = int(self.scroll_offset.y)
        return self.rows[top : top + self.page]
