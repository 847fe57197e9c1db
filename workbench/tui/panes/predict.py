"""4 Predict: a sentence box with live (debounced) probabilities, and a history, newest first,
whose rows go back into the box with enter.

The pane opens on the history, and the box takes the typing from there: the first letter (or
punctuation, or editing key) puts the focus in the box and is typed into it, so `4` then a sentence
types it, while digits still switch panes (1 2 3 4 5 never types "5"). In the box every key is text
until escape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from workbench.core.base.config import LABELS
from workbench.tui.keys import EDITING_KEYS, TYPED_CHARACTERS, Field, typing_bindings
from workbench.tui.messages import PredictionReady, StatusChanged
from workbench.tui.panes.base import Pane
from workbench.tui.style import tone, toned
from workbench.tui.widgets.attributions import ExplainPanel
from workbench.tui.widgets.bars import ProbabilityBars, bar_order

DEBOUNCE_S = 0.3
HISTORY_SIZE = 200
INTO_BOX = "into_box"  # the action of a key typed outside the box: it goes into the box
HISTORY_ROWS = 5  # the history keeps this many rows in view however short the screen: its border, header, 3 rows


@dataclass
class Remembered:
    """A history entry: the model's answer, and the sentence's true label when known."""

    prediction: Any  # workbench.core.model.predict.Prediction
    true_label: int | None = None
    model_label: str = ""  # the model that answered ("run <id>", or the base model's name)


def short_model(label: str) -> str:
    """`run 20240101-120000` → `20240101-120000`; a base model → its last path part (the history column)."""
    if label.startswith("run "):
        return label[4:].split(" ", 1)[0]
    return label.split(" (", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def logits_text(prediction: Any) -> str:
    """`logits acceptable +1.234 · unacceptable -0.567`: named, in the order of the bars."""
    return "logits " + " · ".join(f"{label} {prediction.logits[LABELS.index(label)]:+.3f}" for label in bar_order())


def verdict(prediction: Any, true_label: int | None) -> Text:
    if true_label is None:
        return Text("")
    right = prediction.label == LABELS[true_label]
    text = Text(f"true label {LABELS[true_label]} · ")
    text.append("✓ right" if right else "✗ wrong", style=tone("good" if right else "bad"))
    return text


class HistoryTable(DataTable[Any]):
    """Sentences tried, newest first; enter puts the highlighted one back into the box."""

    BINDINGS = [Binding("enter", "select_cursor", "Reuse", tooltip="put the history sentence back in the box")]


class PredictPane(Pane):
    """Type a sentence; see what the chosen run's model thinks of it."""

    BINDINGS = [
        Binding("escape", "leave_field", "To history", tooltip="leave the sentence box for the history"),
        Binding("slash", "edit", "Edit", tooltip="into the sentence box, its text as it is (from the history)"),
        Binding("ctrl+l", "clear_history", "Clear history", tooltip="clear the history (asks first)"),
        Binding("ctrl+t", "pin", "Pin/unpin", tooltip="pin the sentence, then type a variant: a minimal pair"),
        *typing_bindings(INTO_BOX),
    ]
    HELP = (
        "Type a sentence: the probabilities follow as you type; enter adds it to the history.\n"
        "4 shows the history and the box takes the typing from there: a letter (or ctrl+u, backspace…) "
        "goes into the box, digits still switch panes (4 then 5 shows Runs; 4 then a sentence types it).\n"
        "In the box every key is text, digits too: escape leaves it for the history, alt+1…5 switch "
        "panes from it; / goes back into it as it is.\n"
        "A sentence sent from Evaluate keeps its true label (right / wrong is shown).\n"
        "Answers come from the opened run's model (named above and in the history's model column); "
        "a training never changes it: when one ends, ctrl+o opens its run."
    )

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self._debounce: Timer | None = None
        self.history: list[Remembered] = []  # oldest first; the table shows it newest first
        self.latest: Any = None
        self.given: tuple[str, int] | None = None  # a sentence sent with its true label
        self.model_label = ""  # the model of the opened run: every answer shown is this model's
        self._bound_here: tuple[object, frozenset[str]] = (None, frozenset())  # (focused widget, its keys)

    def compose(self) -> ComposeResult:
        yield Static("", id="predict-model")
        yield Field(
            placeholder="type a sentence, e.g. The book was written by John.", id="predict-input", select_on_focus=False
        )
        yield ProbabilityBars(id="predict-bars")
        yield Static("", id="predict-info")
        yield ExplainPanel(id="predict-explain")
        yield HistoryTable(id="predict-history", cursor_type="row", zebra_stripes=True)

    @property
    def box(self) -> Input:
        return self.query_one("#predict-input", Input)

    def on_resize(self) -> None:
        self.fit_explanation()

    def fit_explanation(self) -> None:
        """The attributions take the rows left above the history's HISTORY_ROWS (compact where they do not
        fit whole): at 60x20, and at 80x24 with a pinned pair, they had pushed the history off the screen."""
        panel = self.query_one(ExplainPanel)
        history = self.query_one("#predict-history", DataTable)
        if not self.content_region or not panel.region:
            return  # not laid out (a hidden pane)
        above = panel.region.y - self.content_region.y
        panel.fit_to(self.content_region.height - above - HISTORY_ROWS - history.styles.margin.top)

    def on_mount(self) -> None:
        table = self.query_one("#predict-history", DataTable)
        table.add_column("prediction", key="prediction")
        table.add_column("p(ok)", key="p")
        table.add_column("true", key="true")
        table.add_column("model", key="model")
        table.add_column("sentence", key="sentence")
        table.border_title = "history, newest first (enter: reuse)"
        self.show_run(self.session.current_run)

    def focus_default(self, leaving_field: bool = False) -> None:
        """The history: the pane's keys work, digits switch panes, and what is typed goes into the box.
        The box keeps the focus it has, but for escape: a sentence just put in it (from Evaluate) stays in
        it when the app focuses the shown pane after the start (it did, seen in a test: enter then reused
        a history row instead of sending the sentence)."""
        if leaving_field or not self.in_field():
            self.focus_on(self.query_one("#predict-history"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == INTO_BOX:  # off in the box (its own keys) and for keys with a binding of their own here
            return not self.in_field() and str(parameters[0]) not in self.keys_bound_here()
        if action == "edit":
            return not self.in_field()
        return super().check_action(action, parameters)

    def keys_bound_here(self) -> frozenset[str]:
        """The keys that the focused widget, its containers and the app bind to something else than
        INTO_BOX (q quits, ? helps, enter reuses a history row...): those keep their binding."""
        focused = self.app.focused
        if self._bound_here[0] is not focused:
            nodes = focused.ancestors_with_self if focused is not None else [self, self.app]
            keys = {
                key
                for node in nodes
                for key, bindings in node._bindings.key_to_bindings.items()
                if any(not binding.action.startswith(f"{INTO_BOX}(") for binding in bindings)
            }
            self._bound_here = (focused, frozenset(keys))
        return self._bound_here[1]

    async def action_into_box(self, key: str) -> None:
        """KEY, typed outside the box (a character or an editing key): the focus goes into the box, and
        the key acts there. Run as the app reads the key, before the keys behind it are handed out, so
        that those reach the box in order."""
        box = self.box
        self.focus_on(box)
        if key in TYPED_CHARACTERS:
            box.insert_text_at_cursor(TYPED_CHARACTERS[key])
        else:
            await box.run_action(EDITING_KEYS[key])

    def on_paste(self, event: events.Paste) -> None:
        """A paste outside the box goes into it (its first line, as the box takes a paste)."""
        if self.in_field() or not event.text:
            return
        event.stop()
        self.focus_on(self.box)
        self.box.insert_text_at_cursor(event.text.splitlines()[0])

    def action_edit(self) -> None:
        self.focus_on(self.box)

    def show_run(self, run_id: str | None) -> None:
        """The user opened RUN_ID: its model answers from now on; what another model computed is
        cleared (the box) or recomputed (the box, the pinned sentence)."""
        source = self.session.model_source(run_id)
        text = Text("model ")
        text.append(source.label, style="bold")
        if not source.finetuned:
            text.append(
                " — UNTRAINED: its classifier head is random, so these probabilities mean nothing "
                "yet; train a run (2) or open one (5)",
                style=tone("warn"),
            )
        self.query_one("#predict-model", Static).update(text)
        self.call_after_refresh(self.fit_explanation)  # (its rows may have changed)
        changed = bool(self.model_label) and source.label != self.model_label
        self.model_label = source.label
        if not changed:
            return
        self.latest = None
        self.query_one("#predict-bars", ProbabilityBars).clear()
        self.query_one("#predict-info", Static).update(toned(f"recomputing with {source.label}…", "muted"))
        panel = self.query_one(ExplainPanel)
        if panel.pinned is not None:
            panel.mark_stale(source.label)
            self.repin(run_id, panel.pinned.sentence)
        if self.box.value.strip():
            self.predict(run_id, self.box.value, False)

    def set_sentence(self, sentence: str, label: int | None = None) -> None:
        """Put SENTENCE in the box (from Evaluate or the history), with its true LABEL when known."""
        self.given = (sentence, label) if label is not None else None
        self.box.value = sentence
        self.box.cursor_position = len(sentence)
        self.focus_on(self.box)  # to be edited, or sent with enter

    def true_label(self, sentence: str) -> int | None:
        return self.given[1] if self.given and self.given[0] == sentence else None

    @on(Input.Changed, "#predict-input")
    def _changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        text = event.value
        self._debounce = self.set_timer(DEBOUNCE_S, lambda: self.predict(self.session.current_run, text, False))

    @on(Input.Submitted, "#predict-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self.predict(self.session.current_run, event.value, True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict", name="prediction")
    def predict(self, run_id: str | None, sentence: str, remember: bool) -> None:
        from workbench.core.model.predict import InputError

        if not sentence.strip():
            self.post_message(PredictionReady(sentence, None, "", True, error="", remember=False, run_id=run_id))
            return
        predictor, label, trained = self.session.get_predictor(run_id, on_status=self.post_message)
        try:
            prediction = predictor.predict_one(sentence)
        except InputError as err:
            self.post_message(PredictionReady(sentence, None, label, trained, error=str(err), run_id=run_id))
            return
        self.post_message(PredictionReady(sentence, prediction, label, trained, remember=remember, run_id=run_id))
        self.post_message(StatusChanged("ready"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="repin", name="pinned sentence")
    def repin(self, run_id: str | None, sentence: str) -> None:
        """The pinned sentence by RUN_ID's model (the opened run changed)."""
        predictor, label, trained = self.session.get_predictor(run_id, on_status=self.post_message)
        self.post_message(
            PredictionReady(sentence, predictor.predict_one(sentence), label, trained, run_id=run_id, pin=True)
        )

    def on_prediction_ready(self, message: PredictionReady) -> None:
        current = message.run_id == self.session.current_run
        if message.pin:
            panel = self.query_one(ExplainPanel)
            if current and panel.pinned is not None and panel.pinned.sentence == message.sentence:
                panel.pin(message.prediction, message.model_label)
            return
        if message.remember and message.prediction is not None:
            # the user pressed enter: remembered, tagged with the model that answered (maybe the one before)
            self.history.append(Remembered(message.prediction, self.true_label(message.sentence), message.model_label))
            del self.history[:-HISTORY_SIZE]
            self.show_history()
        if not current:
            return  # another model's answer (the opened run changed meanwhile): never shown under this one
        if message.sentence != self.box.value and not message.remember:
            return  # an older answer arriving after a newer keystroke
        bars = self.query_one("#predict-bars", ProbabilityBars)
        prediction = message.prediction
        explain_panel = self.query_one(ExplainPanel)
        if prediction is None:
            bars.clear()
            self.show_info(toned(message.error, "bad") if message.error else Text(""))
            explain_panel.clear(message.error)
            self.latest = None
            return
        self.latest = prediction
        explain_panel.request(self.session.current_run, message.sentence)
        bars.show(prediction.probabilities, prediction.label)
        true_label = self.true_label(message.sentence)
        text = Text(f"{prediction.tokens} tokens · {logits_text(prediction)}")
        if prediction.truncated:
            text.append(" · truncated to the max length", style=tone("warn"))
        if not message.trained:
            text.append(" · untrained model", style=tone("warn"))
        if true_label is not None:
            text.append("\n")
            text.append_text(verdict(prediction, true_label))
        self.show_info(text)

    def show_info(self, text: Text) -> None:
        """The line under the bars (tokens and logits, a true label's verdict, an error)."""
        self.query_one("#predict-info", Static).update(text)
        self.call_after_refresh(self.fit_explanation)  # (its rows may have changed)

    def show_history(self) -> None:
        table = self.query_one("#predict-history", DataTable)
        table.clear()
        for entry in reversed(self.history):
            prediction, true_label = entry.prediction, entry.true_label
            true = (
                Text("")
                if true_label is None
                else Text(LABELS[true_label][:5], style="" if prediction.label == LABELS[true_label] else tone("bad"))
            )
            table.add_row(
                prediction.label,
                f"{prediction.probabilities['acceptable']:.3f}",
                true,
                Text(short_model(entry.model_label)[:16]),
                Text(prediction.sentence),
            )  # a sentence is data, never markup
        table.move_cursor(row=0)

    @on(DataTable.RowSelected, "#predict-history")
    def _reuse(self, event: DataTable.RowSelected) -> None:
        """Enter on a history row: its sentence goes back into the box (with its true label)."""
        event.stop()
        if not self.history:
            return
        entry = self.history[len(self.history) - 1 - event.cursor_row]
        self.set_sentence(entry.prediction.sentence, entry.true_label)  # (the focus goes into the box)

    def action_pin(self) -> None:
        """Pin the shown sentence (then type a variant: a minimal pair), or unpin it."""
        panel = self.query_one(ExplainPanel)
        if panel.pinned is not None:
            panel.unpin()
        elif self.latest is None:
            self.notify("type a sentence first, then ctrl+t pins it", severity="warning")
        else:
            panel.pin(self.latest, self.model_label)

    def pin_pair(self, pinned: Any, sentence: str, label: int | None = None) -> None:
        """PINNED (a core Prediction) pinned as A and SENTENCE typed as its variant B (a pair from a suite)."""
        panel = self.query_one(ExplainPanel)
        panel.unpin()
        panel.pin(pinned)
        self.set_sentence(sentence, label)

    def action_clear_history(self) -> None:
        if not self.history:
            self.notify("the history is empty", timeout=2)
            return
        from workbench.tui.screens.confirm import Confirm

        def answered(clear: bool | None) -> None:
            if clear:
                self.history.clear()
                self.show_history()
                self.notify("history cleared", timeout=2)

        self.app.push_screen(
            Confirm(f"Clear the history ({len(self.history)} sentences)?", yes="Clear", no="Keep"), answered
        )
