"""Reviewing training labels from the keyboard, in a screen of training sentences (the map of the training
data, the likely label errors): the highlighted sentence is marked mislabelled (`f`: trained with the other
label), dropped (`d`) or kept as it is (`k`), with an optional note (`n`); `u` undoes its decision.

Each decision goes at once into the label-overrides file (core/data/overrides.py: a plain TSV the user owns),
shown with its path under the table; `t` puts that file into the Train form. The file is small and written
on the screen's thread; a file that cannot be read (a bad line) or written is a notification naming it and
its line, and nothing is written until it is fixed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from workbench.tui.keys import Field
from workbench.tui.messages import OverridesChanged, TrainWithOverrides
from workbench.tui.style import tone
from workbench.tui.widgets.sentence_table import SentenceTable

REVIEW_HELP = """\
Each decision goes at once into the label-overrides file, shown with its path under the table:
label-overrides.tsv in the runs folder, or the file given with workbench --overrides FILE.
The tables say what was decided, in words: 1→0 flipped, 1 drop, 1 keep (the Data pane's training split too).
t fills the Train form's overrides setting with the file; s there trains with the decisions."""


@dataclass(frozen=True)
class Reviewed:
    """A training sentence as a decision names it: its line in the data file, its text and its label there."""

    line: int
    sentence: str
    label: int


def decisions_summary(overrides: dict[int, Any]) -> tuple[str, str]:
    """`3 decisions` and `2 flip, 1 drop`."""
    if not overrides:
        return "no decisions yet", ""
    counts = {name: sum(1 for o in overrides.values() if o.decision == name) for name in ("flip", "drop", "keep")}
    parts = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    return f"{len(overrides)} decision{'' if len(overrides) == 1 else 's'}", parts


class ReviewScreen(ModalScreen[None]):
    """A screen whose table lists training sentences that the user decides about. A subclass composes
    `review_widgets()` under its table, says which sentence is highlighted (`highlighted`) and shows the
    decisions (`decisions_changed`), and calls `read_decisions()` once mounted."""

    BINDINGS = [
        Binding(
            "f", "decide('flip')", "Flip", tooltip="mislabelled: train the highlighted sentence with the other label"
        ),
        Binding("d", "decide('drop')", "Drop", tooltip="leave the highlighted sentence out of training"),
        Binding("k", "decide('keep')", "Keep", tooltip="keep the highlighted sentence's label (reviewed)"),
        Binding(
            "n", "note", "Note", tooltip="a note on the highlighted sentence's decision (enter keeps, escape cancels)"
        ),
        Binding("u", "undo", "Undo", tooltip="undo the highlighted sentence's decision (its line leaves the file)"),
        Binding("t", "train_with", "Train", tooltip="train with the decisions: the file into the Train form"),
    ]

    def __init__(self, overrides_file: Path) -> None:
        super().__init__()
        self.overrides_file = overrides_file
        self.overrides: dict[int, Any] = {}  # line -> core Override, as the file holds them
        self.overrides_error = ""  # why the file cannot be read: nothing is written until it is fixed
        self.noted: Reviewed | None = None  # the sentence whose note is being typed

    # ------------------------------------------------------------ for a subclass

    def highlighted(self) -> Reviewed | None:
        """The sentence under the cursor (None: none yet)."""
        raise NotImplementedError

    TABLE = ""  # the id of the screen's SentenceTable: it shows the decisions and takes the focus back after a note
    TITLE = ""  # the id of the Static above it, which says where a worker of the screen failed
    WHAT = ""  # what the screen reads, for that line

    def show_highlighted(self) -> None:
        """Show the highlighted sentence's detail (its decision too)."""

    def decisions_changed(self) -> None:
        """Show self.overrides in the table and the highlighted sentence's detail."""
        self.query_one(f"#{self.TABLE}", SentenceTable).set_decisions(self.overrides)
        self.show_highlighted()

    def main_widget(self) -> Widget:
        """The table that takes the focus back after a note."""
        return self.query_one(f"#{self.TABLE}", SentenceTable)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            from workbench.tui.errors import describe_error

            self.query_one(f"#{self.TITLE}", Static).update(
                Text(f"{self.WHAT} failed: {describe_error(event.worker.error)}", style="red")
            )

    def review_widgets(self) -> Iterator[Widget]:
        yield Static("", id="review-line")
        note = Field(placeholder="note (enter keeps it, escape cancels)", id="review-note", compact=True)
        note.display = False
        yield note

    def decision_for(self, item: Reviewed) -> Any:
        """ITEM's decision in the file (a core Override), or None; a line decided for another sentence is
        not this one's."""
        override = self.overrides.get(item.line)
        return override if override is not None and override.sentence == item.sentence else None

    # ------------------------------------------------------------ the file

    def read_decisions(self) -> None:
        """Read the overrides file (missing: no decisions yet); a bad one is told and nothing is written."""
        from workbench.core.data.cola import DataError
        from workbench.core.data.overrides import read_overrides

        path = self.overrides_file
        try:
            found = read_overrides(path) if path.exists() else []
        except DataError as err:
            self.refuse(str(err))
        else:
            self.overrides = {o.line: o for o in found}
            self.overrides_error = ""
        self.show_decisions()

    def refuse(self, error: str) -> None:
        self.overrides_error = error
        self.notify(f"{error}; no decision is written until it is fixed", severity="error", timeout=15)

    def change_file(self, change: Callable[[Path], list[Any]], done: str) -> None:
        """Apply CHANGE (core set_override / remove_override on the file) and show the decisions it leaves;
        DONE says what happened, in the status line."""
        from workbench.core.data.cola import DataError

        path = self.overrides_file
        try:
            found = change(path)
        except DataError as err:  # the file as it is cannot be read: it is left as it is
            self.refuse(str(err))
            self.show_decisions()
            return
        except OSError as err:
            self.notify(f"{path}: cannot be written ({err.strerror or err})", severity="error", timeout=15)
            return
        except ValueError as err:
            self.notify(f"{path}: {err}", severity="error", timeout=15)
            return
        self.overrides = {o.line: o for o in found}
        self.overrides_error = ""
        self.app.post_message(OverridesChanged(str(path), found))
        self.show_decisions()
        self.notify(f"{done} in {path}", timeout=3)

    def show_decisions(self) -> None:
        line = self.query_one("#review-line", Static)
        if self.overrides_error:
            line.update(Text(f"✗ {self.overrides_error}", style=tone("bad")))
        else:
            count, parts = decisions_summary(self.overrides)
            text = Text(f"{count} → ")
            text.append(str(self.overrides_file), style="bold")  # the path first: the line ends in … when narrow
            text.append(f" · t: train with them · {parts}" if self.overrides else " · f flip, d drop, k keep")
            line.update(text)
        self.decisions_changed()

    def usable(self) -> Reviewed | None:
        """The highlighted sentence, when a decision about it can be written."""
        item = self.highlighted()
        if item is None:
            return None
        if self.overrides_error:
            self.refuse(self.overrides_error)
            return None
        other = self.overrides.get(item.line)
        if other is not None and other.sentence != item.sentence:
            self.notify(
                f"{self.overrides_file}: line {item.line} is decided for another sentence ({other.sentence!r}), "
                "so this file is for other data: workbench --overrides FILE chooses another file",
                severity="error",
                timeout=15,
            )
            return None
        return item

    # ------------------------------------------------------------ keys

    def action_decide(self, decision: str) -> None:
        from workbench.core.data.overrides import Override, set_override

        item = self.usable()
        if item is None:
            return
        before = self.decision_for(item)
        override = Override(item.line, item.sentence, item.label, decision, before.note if before else "")
        self.change_file(lambda path: set_override(path, override), f"line {item.line}: {decision}")

    def action_undo(self) -> None:
        from workbench.core.data.overrides import remove_override

        item = self.usable()
        if item is None:
            return
        if self.decision_for(item) is None:
            self.notify(f"line {item.line} has no decision to undo", timeout=3)
            return
        self.change_file(lambda path: remove_override(path, item.line), f"line {item.line}: decision undone")

    def action_note(self) -> None:
        item = self.usable()
        if item is None:
            return
        decided = self.decision_for(item)
        if decided is None:
            self.notify("decide first (f flip, d drop, k keep), then n adds a note", severity="warning", timeout=5)
            return
        self.noted = item
        note = self.query_one("#review-note", Input)
        note.value = decided.note
        note.display = True
        note.focus()

    @on(Input.Submitted, "#review-note")
    def _note_submitted(self, event: Input.Submitted) -> None:
        from workbench.core.data.overrides import set_override

        event.stop()
        item, self.noted = self.noted, None
        self.close_note()
        decided = self.decision_for(item) if item is not None else None
        if item is None or decided is None:
            return
        override = replace(decided, note=event.value.strip())
        self.change_file(lambda path: set_override(path, override), f"line {item.line}: note kept")

    def close_note(self) -> None:
        note = self.query_one("#review-note", Input)
        note.display = False
        self.noted = None
        self.main_widget().focus()

    def action_train_with(self) -> None:
        if self.overrides_error:
            self.refuse(self.overrides_error)
            return
        if not self.overrides:
            self.notify(f"no decisions in {self.overrides_file} yet: f, d or k on a sentence first", timeout=5)
            return
        self.app.post_message(TrainWithOverrides(str(self.overrides_file)))
        self.dismiss(None)

    def action_dismiss(self) -> None:  # type: ignore[override]
        """Escape: out of the note first (nothing kept), then the screen closes."""
        if self.query_one("#review-note").display:
            self.close_note()
            return
        self.dismiss(None)
