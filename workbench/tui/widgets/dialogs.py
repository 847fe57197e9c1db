"""Modal screens: the key help and the quit confirmation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

HELP_TEXT = """\
[b]CoLA Workbench[/b] — keyboard first; the mouse is optional.

[b]Everywhere[/b]
  1-5        switch pane: Data, Train, Evaluate, Predict, Runs
  ctrl+p     command palette (every action: "train: start", "eval: holdout", "open run …")
  ? / f1     this help          q / ctrl+q   quit (asks while training)
  tab        next field         escape       leave a text box

[b]1 Data[/b]
  s split    l label filter    o source filter    / search    escape clears search
  ↑↓ pgup/pgdn home/end browse; the highlighted row shows its WordPiece tokens

[b]2 Train[/b]
  the form is validated as you type; enter or s starts, x stops (checkpoint saved),
  D starts it in the background (outlives the app, like train --detach),
  r resumes the chosen run, c shows/hides the form

[b]3 Evaluate[/b]  the opened run's recorded evaluations, every dataset
  d cycle dataset (and its figures)    e evaluate it (recorded in the run)
  f all errors / false positives / false negatives
  s per source / by length / reliability (ECE) / MCC by threshold
  ↑↓ misclassified sentences, most confident first; below: source,
     attributions, nearest training sentences; enter sends one to Predict

[b]4 Predict[/b]
  type a sentence: probabilities and token attributions update as you type
  green: toward acceptable, red: toward unacceptable (NO_COLOR: ▲ ▼)
  enter adds the sentence to the history
  ctrl+t pins the sentence; type a variant: both side by side, the change

[b]5 Runs[/b]
  enter opens the highlighted run in every pane and charts it (live while it trains)
  space marks a run    c compares the marked runs    x stops a running run
  v diffs two marked runs' predictions (d split, e evaluates one lacking them)
  e writes its metrics to runs/<id>/metrics.csv      g refreshes the list
"""


class HelpScreen(ModalScreen[None]):
    """Every key of the workbench."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP_TEXT, id="help-text")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class ConfirmQuit(ModalScreen[bool]):
    """Quit while a training runs? It stops at the next batch with a checkpoint saved."""

    BINDINGS = [Binding("y", "answer(True)", "Quit"), Binding("n,escape", "answer(False)", "Stay")]

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static("A training is running.\nQuit? It stops at the next batch and saves a checkpoint; "
                         "resume it later from the Train pane.", id="confirm-text")
            with Horizontal(id="confirm-buttons"):
                yield Button("Quit (y)", variant="error", id="yes")
                yield Button("Stay (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
