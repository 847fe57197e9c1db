"""How keys are named on screen (help and footer alike), and the keys a text field takes."""

from __future__ import annotations

import string
from typing import Any

from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.keys import _character_to_key
from textual.widgets import Input

# What alt+1…5 arrive as from xterm-like terminals and tmux (ESC + digit): Textual reads them as
# the characters macOS's Option+digit types (¡ ™ £ ¢ ∞). The app binds them with alt+1…5.
ALT_DIGITS = ("inverted_exclamation_mark", "trade_mark_sign", "pound_sign", "cent_sign", "infinity")

NAMES = {
    "question_mark": "?",
    "slash": "/",
    "escape": "esc",
    "space": "space",
    "enter": "enter",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "pageup": "pgup",
    "pagedown": "pgdn",
}


def key_label(key: str) -> str:
    """`ctrl+l` → `^l`, `question_mark` → `?`, `alt+1` stays."""
    *modifiers, name = key.split("+")
    name = NAMES.get(name, name)
    if modifiers == ["ctrl"]:
        return f"^{name}"
    return "+".join([*modifiers, name])


def _editing_keys() -> dict[str, str]:
    """Input's own keys (backspace, ctrl+u, ctrl+w, the arrows, enter...) and their actions."""
    keys: dict[str, str] = {}
    for binding in Input.BINDINGS:
        key, action = (binding.key, binding.action) if isinstance(binding, Binding) else binding[:2]
        for name in key.split(","):
            keys.setdefault(name.strip(), action)
    return keys


EDITING_KEYS = _editing_keys()
FROM_A_FIELD = ("alt+1…5", "Panes")  # the key line's entry whenever a text field has the focus

# The keys that type a character: printable ASCII but the digits (pane keys) and space, by key name.
TYPED_CHARACTERS = {_character_to_key(c): c for c in string.ascii_letters + string.punctuation}


def typing_bindings(action: str) -> list[Binding]:
    """A priority binding to ACTION('<key>') for every key that types or edits text in a field (the
    characters of TYPED_CHARACTERS and EDITING_KEYS): a pane whose box takes the typing from anywhere in
    it (Predict's history) binds them. Priority, so that the box has the focus before the next key of a
    burst is handed out (Textual hands each key to the widget focused when the app reads it); the
    pane's check_action turns off those of keys that are bound there already (q, ?, enter...)."""
    keys = [*TYPED_CHARACTERS, *EDITING_KEYS]
    return [Binding(key, f"{action}({key!r})", show=False, priority=True) for key in keys]


def is_typing_binding(binding: object, action: str) -> bool:
    return isinstance(binding, Binding) and binding.action.startswith(f"{action}(")


class Field(Input):
    """A text field that leaves the pane keys (alt+1…5, however the terminal sends them) to the app:
    an Input would take ¡ ™ £ ¢ ∞ as text, and Textual drops the bindings of keys it takes.

    Its editing keys act in the order they were typed. Textual runs an Input's key bindings when the
    key has bubbled up to the app, by which time the characters typed behind it in the same read were
    inserted already: in tmux, "abc" ctrl+u "def" left the box empty (ctrl+u ran after "def"), and a
    backspace in a burst deleted a later character. Here they run as the field reads them."""

    def __init__(self, *args: Any, cursor_to_end: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursor_to_end = cursor_to_end  # entering the field puts the cursor after its value

    def _watch_value(self, value: str) -> None:
        # Input sets its virtual size to (width, 1) on every change, and the screen's layout pass sets it
        # back to the region's: each keystroke then laid out the whole screen again (17 ms with the Train
        # form). Set here without that side effect; the field still repaints, and one of fixed height
        # (every Field in the app) never changes the layout by its text.
        if not self.styles.auto_dimensions:
            self.set_reactive(Input.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        if self.cursor_to_end:  # here, before the keys typed behind the tab that brought the focus
            self.cursor_position = len(self.value)

    async def _on_key(self, event: events.Key) -> None:
        action = None if event.is_printable else EDITING_KEYS.get(event.key)
        if action is None:
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        self._restart_blink()
        await self.run_action(action)

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return key not in ALT_DIGITS and super().check_consume_key(key, character)
