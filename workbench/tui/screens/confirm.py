"""Questions: quit while a training runs (leave it, stop it, stay), clear the Predict history (yes/no)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class Confirm(ModalScreen[bool]):
    """A question answered by y (or the first button) or n / escape."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="confirm-box"):
            yield Static(self.question, classes="confirm-text", markup=False)
            with Horizontal(classes="confirm-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


QUIT_LEAVE, QUIT_STOP = "leave", "stop"


class ConfirmQuit(ModalScreen[str | None]):
    """Quit while a training runs: leave it running (it is its own process), or stop it with a checkpoint."""

    BINDINGS = [
        Binding("l", "answer('leave')", "Leave it running"),
        Binding("s", "answer('stop')", "Stop it"),
        Binding("n,escape", "answer(None)", "Stay"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="confirm-box"):
            yield Static(
                f"Run {self.run_id} is training in its own process.\nLeave it running (a new workbench "
                "follows it again), or stop it at the next batch with a checkpoint (r resumes it)?",
                classes="confirm-text",
                markup=False,
            )
            with Horizontal(classes="confirm-buttons"):
                yield Button("Leave it running (l)", variant="primary", id=QUIT_LEAVE)
                yield Button("Stop it (s)", variant="error", id=QUIT_STOP)
                yield Button("Stay (n)", id="stay")

    def on_mount(self) -> None:
        self.query_one(f"#{QUIT_LEAVE}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in (QUIT_LEAVE, QUIT_STOP) else None)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
