"""How keys are named on screen (help and footer alike)."""

from __future__ import annotations

NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "space": "space", "enter": "enter",
         "left_square_bracket": "[", "right_square_bracket": "]", "pageup": "pgup", "pagedown": "pgdn"}


def key_label(key: str) -> str:
    """`ctrl+l` → `^l`, `question_mark` → `?`, `alt+1` stays."""
    *modifiers, name = key.split("+")
    name = NAMES.get(name, name)
    if modifiers == ["ctrl"]:
        return f"^{name}"
    return "+".join([*modifiers, name])
