"""How keys are named on screen (help and footer alike)."""

from __future__ import annotations

from textual.widgets import Input

# What alt+1…5 arrive as from xterm-like terminals and tmux (ESC + digit): Textual reads them as
# the characters macOS's Option+digit types (¡ ™ £ ¢ ∞). The app binds them with alt+1…5.
ALT_DIGITS = ("inverted_exclamation_mark", "trade_mark_sign", "pound_sign", "cent_sign", "infinity")

NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "space": "space", "enter": "enter",
         "left_square_bracket": "[", "right_square_bracket": "]", "pageup": "pgup", "pagedown": "pgdn"}


def key_label(key: str) -> str:
    """`ctrl+l` → `^l`, `question_mark` → `?`, `alt+1` stays."""
    *modifiers, name = key.split("+")
    name = NAMES.get(name, name)
    if modifiers == ["ctrl"]:
        return f"^{name}"
    return "+".join([*modifiers, name])


class Field(Input):
    """A text field that leaves the pane keys (alt+1…5, however the terminal sends them) to the app:
    an Input would take ¡ ™ £ ¢ ∞ as text, and Textual drops the bindings of keys it takes."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return key not in ALT_DIGITS and super().check_consume_key(key, character)
