"""The `?` screen: every key of every pane, read from the bindings themselves (never stale)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


EVERYWHERE = """\
tab / shift+tab move between fields; in a text field keys are text: escape leaves it (the footer says so).
A run that ends rings the bell and sends a desktop notification (WORKBENCH_NOTIFY=0 or --no-notify: off).
ctrl+p opens the command palette: every action as "pane: verb", and "open run …"."""
PANE_KEYS = [
    Binding("1", "show_pane", key_display="1…5", tooltip="switch pane: 1 Data, 2 Train, 3 Evaluate, 4 Predict, 5 Runs"),
    Binding(
        "alt+1",
        "show_pane",
        key_display="alt+1…5",
        tooltip="switch pane from anywhere, text fields too "
        "(escape then a digit does it too: it leaves the field first)",
    ),
]


def workbench_help(
    app_bindings: Sequence[BindingType],
    every_pane: Sequence[BindingType],
    panes: Sequence[tuple[str, Any]],
    compare_bindings: Sequence[BindingType],
    screens: Sequence[HelpSection] = (),
) -> list[HelpSection]:
    """The sections of the help: everywhere, every pane (EVERY_PANE: the keys all panes share; then each
    pane class's own keys and HELP note), the compare view, then SCREENS (the views a pane opens)."""
    others = [  # (tab and shift+tab are machinery here, told in EVERYWHERE's note)
        b
        for b in app_bindings
        if isinstance(b, Binding)
        and "show_pane" not in b.action
        and "pane_key" not in b.action
        and (b.description or b.tooltip)
    ]
    sections = [HelpSection("Everywhere", [*PANE_KEYS, *others], EVERYWHERE), HelpSection("Every pane", every_pane)]
    for title, pane_class in panes:
        # (a binding with nothing to say is machinery: Predict's typing into its box, told in its notes)
        own = [
            b
            for b in pane_class.BINDINGS
            if b not in every_pane and not (isinstance(b, Binding) and not b.description and not b.tooltip)
        ]
        sections.append(HelpSection(title, own, pane_class.HELP))
    sections.append(HelpSection("Compare runs (c in 5 Runs)", compare_bindings))
    sections.extend(screens)
    return sections


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
    parts: list[RenderableType] = [
        Text.assemble(("CoLA Workbench", "bold"), " — keyboard first; the mouse is optional.")
    ]
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
