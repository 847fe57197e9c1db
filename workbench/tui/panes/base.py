"""What every pane shares: a typed handle on the app, failure reporting, and the way out of a field."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widget import NoScreen, Widget
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from workbench.tui.errors import describe_error
from workbench.tui.messages import WorkerFailed

if TYPE_CHECKING:
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.session import Session


class Pane(Vertical):
    """A numbered pane of the workbench.

    In a text field, printable keys are text (a digit is a digit): escape leaves the field,
    and the footer says so whenever a field has the focus; alt+1…5 switch panes from anywhere."""

    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", tooltip="leave the text field (then 1-5 switch panes)"),
    ]
    HELP: ClassVar[str] = ""  # notes for the help screen, beside the keys

    @property
    def workbench(self) -> WorkbenchApp:
        return cast("WorkbenchApp", self.app)

    @property
    def session(self) -> Session:
        """The runs folder, the opened run and the models: what a pane works on (the app is for the screen)."""
        return self.workbench.session

    def in_field(self) -> bool:
        focused = self.app.focused
        return isinstance(focused, Input) and self in focused.ancestors

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return self.in_field()
        return True

    def action_leave_field(self) -> None:
        self.focus_default(leaving_field=True)

    def focus_default(self, leaving_field: bool = False) -> None:
        """Focus the pane's main widget (after a pane switch, or leaving a field)."""
        self.focus()

    def focus_on(self, widget: Widget) -> None:
        """Focus WIDGET, or the pane itself while WIDGET cannot take it (loading): the focus must
        never stay behind in the pane that was left (its tab would come back).

        At once, not as `Widget.focus()` does (a callback queued behind the keys already typed): keys
        typed in one burst after a pane's number (`4The cat…`) reach the new pane's widget, never the
        pane left behind (where s, x, r, ? are commands)."""
        target = widget if widget.focusable else self
        try:
            target.screen.set_focus(target)
        except NoScreen:
            target.focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # StateChanged does not bubble: forward failures to the app's one handler.
        if event.state == WorkerState.ERROR:
            self.post_message(WorkerFailed(event.worker.name, describe_error(event.worker.error)))
        self.worker_state_changed(event.worker, event.state)

    def worker_state_changed(self, worker: Worker, state: WorkerState) -> None:
        """Hook for panes that track their own workers."""
