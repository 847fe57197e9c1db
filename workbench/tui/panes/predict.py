"""4 Predict: a sentence box with live (debounced) probabilities, and a history."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from workbench.tui.messages import PredictionReady, StatusChanged
from workbench.tui.panes.base import Pane
from workbench.tui.widgets.attributions import ExplainPanel
from workbench.tui.widgets.bars import ProbabilityBars

DEBOUNCE_S = 0.3


class PredictPane(Pane):
    """Type a sentence; see what the chosen run's model thinks of it."""

    BINDINGS = [
        Binding("ctrl+l", "clear_history", "Clear history"),
        Binding("ctrl+t", "pin", "Pin/unpin"),
        Binding("escape", "leave_box", "Leave box", show=False),
    ]

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self._debounce: Timer | None = None
        self.history: list[Any] = []
        self.latest: Any = None

    def compose(self) -> ComposeResult:
        yield Static("", id="predict-model")
        yield Input(placeholder="type a sentence, e.g. The book was written by John.", id="predict-input")
        yield ProbabilityBars(id="predict-bars")
        yield Static("", id="predict-info")
        yield ExplainPanel(id="predict-explain")
        table: DataTable[Any] = DataTable(id="predict-history", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#predict-history", DataTable)
        table.add_column("prediction", key="prediction")
        table.add_column("p(ok)", key="p")
        table.add_column("sentence", key="sentence")
        table.border_title = "history (enter adds)"
        self.show_run(self.workbench.current_run)

    def focus_default(self) -> None:
        self.query_one("#predict-input").focus()

    def show_run(self, run_id: str | None) -> None:
        source = self.workbench.model_source(run_id)
        label, trained = source.label, source.finetuned
        if trained:
            text = f"model [b]{escape(label)}[/b]"
        else:
            text = (f"model [b]{escape(label)}[/b] [yellow]— UNTRAINED: its classifier head is random, so these "
                    f"probabilities mean nothing yet; train a run (2) or open one (5)[/yellow]")
        self.query_one("#predict-model", Static).update(text)
        value = self.query_one("#predict-input", Input).value
        if value.strip():
            self.predict(run_id, value, False)

    def set_sentence(self, sentence: str) -> None:
        box = self.query_one("#predict-input", Input)
        box.value = sentence
        box.cursor_position = len(sentence)

    @on(Input.Changed, "#predict-input")
    def _changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        text = event.value
        self._debounce = self.set_timer(DEBOUNCE_S, lambda: self.predict(self.workbench.current_run, text, False))

    @on(Input.Submitted, "#predict-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self.predict(self.workbench.current_run, event.value, True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict", name="prediction")
    def predict(self, run_id: str | None, sentence: str, remember: bool) -> None:
        from workbench.core.predict import InputError

        if not sentence.strip():
            self.post_message(PredictionReady(sentence, None, "", True, error="", remember=False))
            return
        predictor, label, trained = self.workbench.get_predictor(run_id, on_status=self.post_message)
        try:
            prediction = predictor.predict_one(sentence)
        except InputError as err:
            self.post_message(PredictionReady(sentence, None, label, trained, error=str(err)))
            return
        self.post_message(PredictionReady(sentence, prediction, label, trained, remember=remember))
        self.post_message(StatusChanged("ready"))

    def on_prediction_ready(self, message: PredictionReady) -> None:
        current = self.query_one("#predict-input", Input).value
        if message.sentence != current and not message.remember:
            return  # an older answer arriving after a newer keystroke
        bars = self.query_one("#predict-bars", ProbabilityBars)
        info = self.query_one("#predict-info", Static)
        prediction = message.prediction
        explain_panel = self.query_one(ExplainPanel)
        if prediction is None:
            bars.clear()
            info.update(Text(message.error, style="red") if message.error else "")
            explain_panel.clear(message.error)
            self.latest = None
            return
        self.latest = prediction
        explain_panel.request(self.workbench.current_run, message.sentence)
        bars.show(prediction.probabilities, prediction.label)
        logits = " ".join(f"{value:+.3f}" for value in prediction.logits)
        truncated = " · [yellow]truncated to the max length[/yellow]" if prediction.truncated else ""
        caveat = "" if message.trained else " · [yellow]untrained model[/yellow]"
        info.update(f"{prediction.tokens} tokens · logits {logits}{truncated}{caveat}")
        if message.remember:
            self.history.append(prediction)
            table = self.query_one("#predict-history", DataTable)
            table.add_row(prediction.label, f"{prediction.probabilities['acceptable']:.3f}",
                          Text(prediction.sentence))  # a sentence is data, never markup
            table.move_cursor(row=table.row_count - 1)

    def action_leave_box(self) -> None:
        """Escape: out of the sentence box to the history, so number keys switch panes again."""
        self.query_one("#predict-history", DataTable).focus()

    def action_pin(self) -> None:
        """Pin the shown sentence (then type a variant: a minimal pair), or unpin it."""
        panel = self.query_one(ExplainPanel)
        if panel.pinned is not None:
            panel.unpin()
        elif self.latest is None:
            self.notify("type a sentence first, then ctrl+t pins it", severity="warning")
        else:
            panel.pin(self.latest)

    def action_clear_history(self) -> None:
        self.history.clear()
        self.query_one("#predict-history", DataTable).clear()
