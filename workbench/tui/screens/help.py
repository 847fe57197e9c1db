"""The `?` screen: every key of every pane, read from the bindings themselves (never stale)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.tui.keys import key_label


@dataclass
class HelpSection:
    title: str
    bindings: Sequence[BindingType]
    notes: str = ""


def key_lines(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do) per action: `escape,q` and one binding per key of the same action merge."""
    merged: dict[str, tuple[list[str], str]] = {}
    for binding in Binding.make_bindings(bindings):
        text = binding.tooltip or binding.description
        keys, _ = merged.setdefault(f"{binding.action}|{text}", ([], text))
        label = binding.key_display or key_label(binding.key)
        if label not in keys:
            keys.append(label)
    return [(" / ".join(keys), text) for keys, text in merged.values()]


def help_text(sections: Sequence[HelpSection]) -> Group:
    """The help as one renderable: per section its keys (a hanging column) and its notes."""
    parts: list[RenderableType] = [Text.assemble(("CoLA Workbench", "bold"),
                                                 " — keyboard first; the mouse is optional.")]
    for section in sections:
        parts.append(Text(f"\n{section.title}", style="bold underline"))
        keys = Table.grid(padding=(0, 1))
        keys.add_column(style="bold", no_wrap=True, min_width=10)
        keys.add_column()
        for key, what in key_lines(section.bindings):
            keys.add_row(f" {key}", what)
        parts.append(keys)
        for line in section.notes.strip().splitlines():
            parts.append(Padding(Text(line, style="italic"), (0, 0, 0, 2)))
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """Every key of the workbench; escape, q, ? or f1 closes."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, sections: Sequence[HelpSection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_text(self.sections), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "keys · ↑↓ scroll · escape closes"

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
