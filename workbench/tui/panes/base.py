"""What every pane shares: a typed handle on the app and failure reporting."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.containers import Vertical
from textual.worker import Worker, WorkerState

from workbench.tui.messages import WorkerFailed

if TYPE_CHECKING:
    from workbench.tui.app import WorkbenchApp


def describe_error(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0] if "\n" in text else text


class Pane(Vertical):
    """A numbered pane of the workbench."""

    can_focus = True

    @property
    def workbench(self) -> WorkbenchApp:
        return cast("WorkbenchApp", self.app)

    def focus_default(self) -> None:
        """Focus the pane's main widget (after a pane switch)."""
        self.focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # StateChanged does not bubble: forward failures to the app's one handler.
        if event.state == WorkerState.ERROR:
            self.post_message(WorkerFailed(event.worker.name, describe_error(event.worker.error)))
        self.worker_state_changed(event.worker, event.state)

    def worker_state_changed(self, worker: Worker, state: WorkerState) -> None:
        """Hook for panes that track their own workers."""
