"""The key line at the bottom of the screen: the keys the focused widget and its panes answer to.

Textual's Footer shows the same keys as one widget per key, and mounts them all afresh whenever the
focus moves: on a pane switch that recomposition and its styling were about 100 ms of the 130-190 ms
the switch took (2-core Xeon, benchmarks/interactive.py --only switch). This is one line of text,
redrawn only when the keys it shows change. Where they do not all fit, whole entries are left out
from the end (the help's key the last to go), never one cut mid-word ("q Qui")."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from workbench.tui.keys import FROM_A_FIELD


def entry_width(key: str, description: str) -> int:
    return len(key) + (len(description) + 1 if description else 0)


def fitted(
    entries: list[tuple[str, str, bool]], width: int, keep_last: set[int] | frozenset[int] = frozenset()
) -> list[int]:
    """The indexes of ENTRIES (key, description, enabled) shown in WIDTH columns, one space apart: all
    when they fit, else whole entries left out from the end, those in KEEP_LAST (the help) last."""
    shown = list(range(len(entries)))

    def total() -> int:
        return sum(entry_width(*entries[i][:2]) for i in shown) + max(0, len(shown) - 1)

    while shown and total() > width:
        others = [i for i in shown if i not in keep_last]
        shown.remove(others[-1] if others else shown[-1])
    return shown


class KeyLine(Widget, can_focus=False):
    """`key Description` for every shown binding of the focused chain, one per action, disabled ones
    dimmed; in a text field, `alt+1…5 Panes` after its way out; the command palette's key where the
    screen is wide."""

    COMPONENT_CLASSES = {"keyline--key", "keyline--description"}
    DEFAULT_CSS = """
    KeyLine {
        dock: bottom;
        height: 1;
        text-wrap: nowrap;
        text-overflow: clip;
        background: $footer-background;
        color: $footer-foreground;
        & > .keyline--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .keyline--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, *, palette_from_width: int, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.palette_from_width = palette_from_width
        self.keys: list[tuple[str, str, bool]] = []  # (key as shown, description, enabled)
        self.help_entries: set[int] = set()  # the indexes in keys of the help's key: kept the longest

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def on_resize(self) -> None:
        self.bindings_changed(self.screen)
        self.refresh()  # the same keys may fit otherwise

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        keys = self.shown_keys()
        if keys != self.keys:
            self.keys = keys
            self.refresh()

    def shown_keys(self) -> list[tuple[str, str, bool]]:
        active = self.screen.active_bindings
        keys: list[tuple[str, str, bool]] = []
        actions: set[str] = set()
        self.help_entries = set()
        for _node, binding, enabled, _tooltip in active.values():
            if binding.show and binding.action not in actions:
                actions.add(binding.action)
                if binding.action in ("help", "app.help"):
                    self.help_entries.add(len(keys))
                keys.append((self.app.get_key_display(binding), binding.description, enabled))
        if isinstance(self.screen.focused, Input):  # digits are text here: say how panes switch
            leave = next((i + 1 for i, (key, _, _) in enumerate(keys) if key == "esc"), 0)
            keys.insert(leave, (*FROM_A_FIELD, True))
            self.help_entries = {i + (i >= leave) for i in self.help_entries}
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if (
            palette is not None
            and self.app.ENABLE_COMMAND_PALETTE
            and self.screen.size.width >= self.palette_from_width
        ):
            keys.append((self.app.get_key_display(palette.binding), palette.binding.description, palette.enabled))
        return keys

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keyline--key")
        description_style = self.get_component_rich_style("keyline--description")
        line = Text(no_wrap=True, overflow="crop")
        for index in fitted(self.keys, self.size.width, self.help_entries):
            key, description, enabled = self.keys[index]
            if len(line):
                line.append(" ")
            start = len(line)
            line.append(key, key_style)
            if description:
                line.append(f" {description}", description_style)
            if not enabled:
                line.stylize("dim", start)
        line.stylize_before(self.rich_style)  # the line's colours under each key's own
        return line
