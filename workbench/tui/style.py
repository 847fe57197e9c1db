"""Styles that read without colour: every state has a glyph or a word, and under NO_COLOR
(https://no-color.org) colours give way to bold, reverse and italic: no colour is sent at all, not
even the greys that Textual turns colours into (`send_no_colour`)."""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.filter import Monochrome, NoColor

COLOUR = {"good": "green", "bad": "bold red", "warn": "yellow", "info": "bold cyan", "muted": "dim"}
PLAIN = {"good": "bold", "bad": "bold reverse", "warn": "italic", "info": "bold", "muted": ""}
STATUS_TONE = {"running": "info", "stopped": "warn", "done": "good", "failed": "bad", "new": "muted"}
STATUS_GLYPH = {"running": "▶", "stopped": "‖", "done": "✓", "failed": "✗", "new": "·"}


def no_color() -> bool:
    """Textual's rule: NO_COLOR set, to anything, turns colour off."""
    return "NO_COLOR" in os.environ


def send_no_colour(app: Any) -> None:
    """Under NO_COLOR, make APP (a Textual App) send no colour at all. Textual's own NO_COLOR filter
    (Monochrome) turns each colour into a grey that it still sends as a 256-colour code (38;5;253,
    48;5;235 in tmux); its NoColor filter leaves the terminal's own colours, keeping bold, reverse,
    italic and underline, by which app.tcss's :nocolor rules mark every state."""
    if app.no_color:
        app._filters = [NoColor() if isinstance(f, Monochrome) else f for f in app._filters]


def tone(kind: str) -> str:
    """A Rich style for KIND (good, bad, warn, info, muted) that reads with or without colour."""
    return (PLAIN if no_color() else COLOUR).get(kind, "")


def toned(text: str, kind: str) -> Text:
    return Text(text, style=tone(kind))


def status_text(status: str, detail: str = "") -> Text:
    """`✗ failed: detail`, `✓ done`: the glyph says it when the colour cannot."""
    text = f"{STATUS_GLYPH.get(status, '?')} {status}" + (f": {detail}" if detail else "")
    return toned(text, STATUS_TONE.get(status, ""))
