"""Styles that read without colour: every state has a glyph or a word, and under NO_COLOR
(https://no-color.org, honoured by Textual) colours give way to bold, reverse and italic
instead of the greys that red and green turn into."""

from __future__ import annotations

import os

from rich.text import Text

COLOUR = {"good": "green", "bad": "bold red", "warn": "yellow", "info": "bold cyan", "muted": "dim"}
PLAIN = {"good": "bold", "bad": "bold reverse", "warn": "italic", "info": "bold", "muted": ""}
STATUS_TONE = {"running": "info", "stopped": "warn", "done": "good", "failed": "bad", "new": "muted"}
STATUS_GLYPH = {"running": "▶", "stopped": "‖", "done": "✓", "failed": "✗", "new": "·"}


def no_color() -> bool:
    """Textual's rule: NO_COLOR set, to anything, turns colour off."""
    return "NO_COLOR" in os.environ


def tone(kind: str) -> str:
    """A Rich style for KIND (good, bad, warn, info, muted) that reads with or without colour."""
    return (PLAIN if no_color() else COLOUR).get(kind, "")


def toned(text: str, kind: str) -> Text:
    return Text(text, style=tone(kind))


def status_text(status: str, detail: str = "") -> Text:
    """`✗ failed: detail`, `✓ done`: the glyph says it when the colour cannot."""
    text = f"{STATUS_GLYPH.get(status, '?')} {status}" + (f": {detail}" if detail else "")
    return toned(text, STATUS_TONE.get(status, ""))
