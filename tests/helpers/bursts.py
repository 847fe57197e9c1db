"""Keys sent the way the terminal driver sends them: all at once, from its input thread."""

from __future__ import annotations

import threading
import unicodedata

from textual import events
from textual.app import App

KEY_NAMES = {" ": "space", ".": "full_stop", ",": "comma", "?": "question_mark", "!": "exclamation_mark"}


def key_event(char: str) -> events.Key:
    """The key event a terminal sends for CHAR (\\b: backspace, \\x15: ctrl+u, \\t: tab)."""
    if char == "\t":
        return events.Key("tab", char)
    if char == "\b":
        return events.Key("backspace", None)
    if char == "\x15":
        return events.Key("ctrl+u", char)
    name = KEY_NAMES.get(char, char)
    if len(name) > 1 and char not in KEY_NAMES:
        name = unicodedata.name(char).lower().replace(" ", "_")
    return events.Key(name, char)


def burst(app: App[object], text: str) -> None:
    """Send TEXT's keys all at once from another thread, as the terminal driver's input thread does."""
    driver = app._driver
    assert driver is not None

    def send() -> None:
        for char in text:
            driver.process_message(key_event(char))

    thread = threading.Thread(target=send)
    thread.start()
    thread.join()
