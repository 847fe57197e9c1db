"""A log that re-wraps its lines to its width, whenever that changes (a RichLog keeps the
width each line was written at, and crops the numbers at the end of long lines)."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class TextLog(VerticalScroll):
    """Lines of text, newest at the bottom, scrolled to the end as they come."""

    def __init__(self, max_lines: int = 500, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.lines: deque[Text] = deque(maxlen=max_lines)

    def compose(self) -> ComposeResult:
        yield Static("", classes="log-lines")

    def write(self, line: Text | str) -> None:
        self.lines.append(line if isinstance(line, Text) else Text(line))
        self.show()

    def clear(self) -> None:
        self.lines.clear()
        self.show()

    def show(self) -> None:
        self.query_one(".log-lines", Static).update(Text("\n").join(self.lines))
        self.call_after_refresh(self.scroll_end, animate=False)

    def on_show(self) -> None:
        # Lines written while the log was hidden (another pane, the form) had no height to scroll to:
        # the end again when it comes back (a resumed run's `done:` line in view).
        self.call_after_refresh(self.scroll_end, animate=False)

    def on_resize(self) -> None:
        self.call_after_refresh(self.scroll_end, animate=False)

    def plain(self) -> str:
        return "\n".join(line.plain for line in self.lines)
