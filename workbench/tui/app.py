"""The workbench app: five panes, the keys that work everywhere, following runs, announcing their end.

Importing this module is cheap: torch, transformers, pandas and sklearn are imported
inside workers after the first paint (a test proves it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Static, TabbedContent, TabPane, Tabs
from textual.worker import get_current_worker

from workbench.core.base.config import DEFAULT_MODEL, default_runs_dir
from workbench.core.base.layout import run_path
from workbench.tui.commands import workbench_commands
from workbench.tui.keys import ALT_DIGITS
from workbench.tui.messages import (
    FollowEnded,
    OverridesChanged,
    RunChosen,
    RunFollowed,
    RunsRefreshed,
    SendToPredict,
    StatusChanged,
    TokenizerLoaded,
    TrainFinished,
    TrainLaunched,
    TrainWithOverrides,
    WorkerFailed,
)
from workbench.tui.notify import BEL, notifications_enabled, terminal_notification
from workbench.tui.panes import PANES, TITLES
from workbench.tui.panes.base import Pane
from workbench.tui.panes.data import DataPane
from workbench.tui.panes.evaluate import EvaluatePane
from workbench.tui.panes.predict import PredictPane
from workbench.tui.panes.runs import RunsPane
from workbench.tui.panes.train import TrainPane
from workbench.tui.screens.confirm import QUIT_LEAVE, QUIT_STOP, ConfirmQuit
from workbench.tui.screens.help import HelpScreen, HelpSection, workbench_help
from workbench.tui.session import Session
from workbench.tui.style import send_no_colour
from workbench.tui.widgets.keyline import KeyLine

PaneT = TypeVar("PaneT", bound=Pane)
HIDDEN_PANES_LATEST = 2.0  # s after start: the hidden panes are begun by then, whatever the data does
WIDE_COLUMNS = 110  # from here on the screen is "-wide" (app.tcss's layouts for wide screens)
PANE_CLASSES: tuple[type[Pane], ...] = (DataPane, TrainPane, EvaluatePane, PredictPane, RunsPane)


class Panes(TabbedContent):
    """The panes' tabs, deaf to stale news. When the app starts, the tab bar announces its first tab and
    the first focused widget announces its pane; on a busy machine a pane key can switch panes before
    those messages are handled, and Textual would then switch back (the key undone, the focus on a
    hidden pane: seen under load in tests/tui/test_learned.py and test_soup_in_the_app.py). A tab the bar
    no longer shows as active, or a pane the focus has left since, is not switched to."""

    def _on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tabs.active != event.tab.id:
            event.stop()
            event.prevent_default()  # TabbedContent's own handler would switch to it

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors_with_self:
            event.stop()
            event.prevent_default()


class WorkbenchApp(App[None]):
    """CoLA Workbench: browse data, train, evaluate and try sentences, by keyboard."""

    CSS_PATH = "app.tcss"
    TITLE = "CoLA Workbench"
    BINDINGS = [
        # priority: the switch happens as the key is read, so the keys typed after it in one burst go to
        # the new pane (a binding that waits for the key to bubble up sends them to the pane left behind)
        *[
            Binding(str(i + 1), f"pane_key('{pane}')", TITLES[pane][2:], show=False, priority=True)
            for i, pane in enumerate(PANES)
        ],
        *[
            Binding(f"alt+{i + 1},{ALT_DIGITS[i]}", f"show_pane('{pane}')", TITLES[pane][2:], show=False, priority=True)
            for i, pane in enumerate(PANES)
        ],
        # priority for the same reason: "tab tab ctrl+u 3" typed fast fills the field the tabs reached,
        # where the screen's own tab binding moved the focus only after the digit had switched panes
        Binding("tab", "focus_next", show=False, priority=True),
        Binding("shift+tab", "focus_previous", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help", tooltip="this help"),
        Binding("q", "quit", "Quit", tooltip="quit (asks while a training runs)"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, tooltip="quit (asks while a training runs)"),
        Binding(
            "ctrl+o",
            "open_offered",
            "Open new run",
            tooltip="open the run that just finished training "
            "(Predict, Evaluate and Runs stay on the opened run until then)",
        ),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (70, "-medium"), (WIDE_COLUMNS, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    def __init__(
        self,
        model: str | None = None,
        data: str | None = None,
        runs_dir: Path | None = None,
        run: str | None = None,
        load_on_start: bool = True,
        notify: bool | None = None,
        launcher: Callable[..., int] | None = None,
        overrides: Path | None = None,
    ) -> None:
        super().__init__()
        send_no_colour(self)  # NO_COLOR: not even the greys Textual's own filter sends
        # No animations unless TEXTUAL_ANIMATIONS asks for them: over SSH each frame of the tabs' sliding
        # underline or of a smooth scroll is bytes on the link and CPU taken from a training beside the app,
        # and a pane key waits for its 0.3 s slide to end before the next key is handled.
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.animation_level = "none"
        self.session = Session(
            model or DEFAULT_MODEL,
            data or "",
            Path(runs_dir) if runs_dir else default_runs_dir(),
            launcher=launcher,
            overrides=Path(overrides) if overrides else None,
        )
        self.load_on_start = load_on_start
        self.notify_terminal = notifications_enabled(notify)
        self.runs: list[Any] = []
        self.followed_run: str | None = None
        self.offered_run: str | None = None  # a run that finished training, offered for opening (ctrl+o)
        self.monitor: Any = None  # core.system.SystemMonitor, made on first use
        self.panes_mounted: asyncio.Future[Any] | None = None  # mount_panes, once
        self.quitting = False
        if run:
            folder = run_path(self.runs_dir, run)
            self.runs_dir = folder.parent
            self.current_run = folder.name
        from workbench.core.runs.status import running_runs

        # the trainings going on now (started by an app that closed, or from the CLI): followed at once
        self.running_at_start = running_runs(self.runs_dir)

    def compose(self) -> ComposeResult:
        first = "train" if self.current_run or self.running_at_start else "data"
        with Panes(initial=first, id="panes"):
            for name, pane_class in zip(PANES, PANE_CLASSES, strict=True):
                with TabPane(TITLES[name], id=name):
                    if name == first or self.current_run:  # an opened run: every pane explores it at once
                        yield pane_class(id=f"{name}-pane")
        yield Static("starting…", id="status")
        yield KeyLine(id="keys", palette_from_width=WIDE_COLUMNS)  # the palette's key on wide screens

    def on_mount(self) -> None:
        if self.current_run:
            self.call_after_refresh(self.open_run, self.current_run)
        if self.running_at_start:
            self.call_after_refresh(self.follow_running)
        if self.load_on_start:
            # After the first paint: the heavy imports happen in the worker, behind a loading state.
            self.call_after_refresh(lambda: self.query_one(DataPane).load(self.data or None, self.model))
            # The hidden panes come once the Data pane is ready (on_tokenizer_loaded), or after this at most.
            self.set_timer(HIDDEN_PANES_LATEST, self.start_mounting_panes)
        # (without the load, as in tests: a hidden pane is composed when it is first shown or needed)
        self.call_after_refresh(self.focus_pane)

    def start_mounting_panes(self) -> None:
        """Compose the panes not composed at start (every pane but the first shown), one after the other
        beside the app's queue, which goes on reading keys meanwhile. Composing and styling the four
        hidden panes took half a second before the first frame (a Pilot start: 0.80 s with all five,
        0.27 s with the Data pane alone); begun once the Data pane is ready, they cost no wait."""
        if self.panes_mounted is None and not self.quitting:
            self.panes_mounted = asyncio.ensure_future(self._mount_hidden_panes())

    async def _mount_hidden_panes(self) -> None:
        for name, pane_class in zip(PANES, PANE_CLASSES, strict=True):
            if not self.query(f"#{name}-pane") and self.is_running and not self.quitting:
                await self.query_one(f"TabPane#{name}", TabPane).mount(pane_class(id=f"{name}-pane"))

    async def mount_panes(self) -> None:
        """Every pane composed: what needs another pane waits here (keys behind it wait in the queue)."""
        self.start_mounting_panes()
        if self.panes_mounted is not None:  # (None only once quitting: nothing is begun then)
            await asyncio.shield(self.panes_mounted)

    def on_tokenizer_loaded(self, message: TokenizerLoaded) -> None:
        self.call_after_refresh(self.start_mounting_panes)  # the table and its tokens drawn first

    @asynccontextmanager
    async def run_test(self, **options: Any) -> AsyncIterator[Pilot[None]]:
        """Textual's test harness, closing the app only once the hidden panes are composed: it closes the
        app directly, not through its queue (where quitting waits for mount_panes), and a pane composed
        while the app's widgets were being removed found none of its own (seen: NoMatches in on_mount)."""
        async with super().run_test(**options) as pilot:
            try:
                yield pilot
            finally:
                if self.panes_mounted is not None:
                    await asyncio.shield(self.panes_mounted)

    def action_help_quit(self) -> None:
        """ctrl+c (copy in a text field) does not quit: say what does, in plain words (our notifications
        are never markup, so Textual's own `[b]ctrl+q[/b]` would show raw)."""
        self.notify("ctrl+q quits (q too, outside a text field); ctrl+c copies", title="Do you want to quit?")

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Notifications carry file names, data and sentences: never parse them as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # the session's state, as the app's own (the CLI, the tests and the screenshot script read them here)
    @property
    def model(self) -> str:
        return self.session.model

    @property
    def data(self) -> str:
        return self.session.data

    @property
    def runs_dir(self) -> Path:
        return self.session.runs_dir

    @runs_dir.setter
    def runs_dir(self, folder: Path) -> None:
        self.session.runs_dir = folder

    @property
    def current_run(self) -> str | None:
        return self.session.current_run

    @current_run.setter
    def current_run(self, run_id: str | None) -> None:
        self.session.current_run = run_id

    async def follow_running(self) -> None:
        """Follow the newest of the runs that were training when the app started, and say so."""
        await self.mount_panes()
        newest, count = self.running_at_start[-1], len(self.running_at_start)
        self.query_one(TrainPane).follow(newest)
        others = f"; {count - 1} more training: f in Train follows the next" if count > 1 else ""
        self.notify(f"run {newest} is training: following it in Train (2){others}", timeout=8)
        self.set_status(f"following run {newest}, training in its own process{others}")

    def system_monitor(self) -> Any:
        """The machine's CPU, RAM and GPU sampler (core `SystemMonitor`), shared by every caller."""
        if self.monitor is None:
            from workbench.core.base.system import SystemMonitor

            self.monitor = SystemMonitor()
        return self.monitor

    # ------------------------------------------------------------ panes and help

    def pane(self, name: str) -> Pane:
        return self.query_one(f"#{name}-pane", Pane)

    def mounted(self, pane_class: type[PaneT]) -> PaneT | None:
        """The pane of PANE_CLASS, None before it is composed (mount_panes) or once the app has closed."""
        return next(iter(self.query(pane_class)), None)

    @property
    def active_pane(self) -> str:
        return self.query_one(TabbedContent).active or "data"

    async def action_pane_key(self, name: str) -> None:
        """A number key: switch panes, unless a text field has the focus (there a digit is text) or a
        dialog is open (its own keys)."""
        if isinstance(self.focused, Input) or self.screen.is_modal:
            raise SkipAction()
        await self.action_show_pane(name)

    async def action_show_pane(self, name: str) -> None:
        """Show pane NAME (composing the hidden panes first if they are not yet): the keys typed after the
        switch wait in the app's queue meanwhile, and reach the new pane."""
        if self.panes_mounted is None or not self.panes_mounted.done():
            await self.mount_panes()
        tabbed = self.query_one(TabbedContent)
        tabbed.active = name
        # Show the pane now rather than when the tab message arrives: hidden widgets refuse focus,
        # and a key typed right after the number must reach the new pane.
        tabbed.get_child_by_type(ContentSwitcher).current = name
        self.focus_pane()

    def focus_pane(self) -> None:
        if self.query(f"#{self.active_pane}-pane"):
            self.pane(self.active_pane).focus_default()

    @on(TabbedContent.TabActivated)
    async def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        in_flight = self.panes_mounted is not None and not self.panes_mounted.done()
        if in_flight or not self.query(f"#{self.active_pane}-pane"):
            # a tab chosen on the tab bar before the hidden panes were composed, or while they are (a
            # pane mounted but not yet composed within has none of its widgets)
            await self.mount_panes()
        if not self.query(f"#{self.active_pane}-pane"):
            return  # quitting meanwhile
        if self.active_pane == "runs":
            self.query_one(RunsPane).action_refresh_runs()
        if isinstance(self.focused, Tabs):
            return  # browsing tabs with the arrow keys: keep the focus on the tab bar
        if self.focused is not None and self.pane(self.active_pane) in self.focused.ancestors_with_self:
            return  # the pane was shown by a key and has the focus already (maybe moved on since)
        self.focus_pane()

    def action_help(self) -> None:
        from workbench.tui.screens.compare import CompareScreen
        from workbench.tui.screens.label_issues import LabelIssuesScreen
        from workbench.tui.screens.review import REVIEW_HELP, ReviewScreen
        from workbench.tui.screens.training_map import TrainingMapScreen

        panes = [(TITLES[name], pane_class) for name, pane_class in zip(PANES, PANE_CLASSES, strict=True)]
        screens = [
            HelpSection("Map of the training data (m in 1 Data)", TrainingMapScreen.BINDINGS),
            HelpSection("Likely label errors (i in 1 Data)", LabelIssuesScreen.BINDINGS),
            HelpSection("Reviewing labels (in the map and the label errors)", ReviewScreen.BINDINGS, REVIEW_HELP),
        ]
        help_sections = workbench_help(self.BINDINGS, Pane.BINDINGS, panes, CompareScreen.BINDINGS, screens)
        self.push_screen(HelpScreen(help_sections))

    # ------------------------------------------------------------ runs: open, follow, announce

    async def open_run(self, run_id: str | None) -> None:
        """The user opens RUN_ID: Predict, Evaluate and Runs explore it (and only a user's choice
        changes it: a training that starts or ends offers its run, never opens it)."""
        await self.mount_panes()  # every pane is told
        self.current_run = run_id
        if run_id == self.offered_run:
            self.offered_run = None
            self.refresh_bindings()
        for name in PANES:
            show = getattr(self.pane(name), "show_run", None)
            if show is not None:
                show(run_id)
        self.set_status(f"run {run_id} opened" if run_id else "no run chosen")
        self.follow_run(run_id)

    def follow_run(self, run_id: str | None) -> None:
        """Replay the opened run's events into the Runs charts, then follow them live until it ends
        (the Train pane follows a training itself). The run followed before is let go."""
        self.followed_run = run_id
        self.query_one(RunsPane).start_following(run_id)
        if run_id is None:
            self.workers.cancel_group(self, "follow")
        else:
            self.follow_worker(run_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow", name="follow run")
    def follow_worker(self, run_id: str) -> None:
        """Drive core `follow_run`; ends when the run does, or when this worker is cancelled
        (another run chosen: `exclusive`; the app exiting: every worker is cancelled)."""
        from workbench.core.runs.lock import RunLock
        from workbench.core.runs.metrics import follow_run

        worker = get_current_worker()
        run_dir = run_path(self.runs_dir, run_id)
        live = run_dir.is_dir() and RunLock.is_locked(run_dir)  # training now: its end is news
        for batch in follow_run(run_dir, cancelled=lambda: worker.is_cancelled):
            if worker.is_cancelled:
                return
            self.post_message(RunFollowed(run_id, batch))
        self.post_message(FollowEnded(run_id, cancelled=worker.is_cancelled, was_live=live))

    async def on_run_followed(self, message: RunFollowed) -> None:
        if message.run_id != self.followed_run or not self.query(RunsPane):
            return  # a message of a run let go, still queued (or of the app closing)
        await self.mount_panes()
        self.query_one(RunsPane).add_events(message.run_id, message.events)

    async def on_follow_ended(self, message: FollowEnded) -> None:
        if message.cancelled or not self.query(RunsPane):
            return
        await self.mount_panes()
        self.query_one(RunsPane).action_refresh_runs()
        if message.was_live and self.query_one(TrainPane).shown_run != message.run_id:  # (else the pane says it)
            from workbench.core.runs.status import run_info

            info = run_info(run_path(self.runs_dir, message.run_id))
            self.announce(f"run {message.run_id} {info.status}", info.summary())
            self.offer_run(message.run_id, info.status)

    def offer_run(self, run_id: str, status: str) -> None:
        """A training ended: offer its run (ctrl+o, or the palette) without opening it. A switch of
        model under the user's hands would mix answers of two models."""
        if run_id == self.current_run or not self.screen_stack:
            return  # (no screens: the app is closing and a training's last message came late)
        from workbench.core.base.layout import RunError, model_folder

        try:
            model_folder(run_path(self.runs_dir, run_id))
        except RunError:
            return  # nothing to explore in it
        self.offered_run = run_id
        self.refresh_bindings()
        opened = f"run {self.current_run}" if self.current_run else "the base model"
        self.notify(
            f"run {run_id} {status}: ctrl+o opens it (Predict, Evaluate and Runs stay on {opened} until you do)",
            timeout=12,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_offered":
            return self.offered_run is not None  # in the footer only while a finished run is offered
        return True

    async def action_open_offered(self) -> None:
        if self.offered_run is None:
            self.notify("no finished training to open: open a run in Runs (5)", timeout=3)
            return
        run_id = self.offered_run
        await self.open_run(run_id)
        self.notify(f"opened run {run_id}", timeout=3)

    def announce(self, title: str, body: str) -> None:
        """A run ended: the terminal bell and a desktop notification (OSC 777 and OSC 9), unless turned off."""
        if self.notify_terminal and self._driver is not None:
            # between two frames, through the driver's one writer: nothing printed, the screen intact
            self._driver.write(BEL + terminal_notification(f"CoLA Workbench: {title}", body))

    def on_train_launched(self, message: TrainLaunched) -> None:
        self.set_status(f"run {message.run_id} training in its own process (pid {message.pid})")
        runs = self.mounted(RunsPane)
        if runs is not None:
            runs.action_refresh_runs()  # the list shows it running; the opened run stays the one explored

    async def on_run_chosen(self, message: RunChosen) -> None:
        await self.open_run(message.run_id)
        self.notify(f"opened run {message.run_id}", timeout=3)

    def on_runs_refreshed(self, message: RunsRefreshed) -> None:
        self.runs = list(message.runs)

    # ------------------------------------------------------------ messages from panes

    def on_status_changed(self, message: StatusChanged) -> None:
        self.set_status(message.text, message.severity)

    def set_status(self, text: str, severity: str = "information") -> None:
        found = self.query("#status").results(Static)
        status = next(found, None)
        if status is None:
            return  # the app is closing: a worker's last word arrives after the screen went
        status.set_class(severity == "error", "-error")
        status.update(Text(("✗ " if severity == "error" else "") + text))  # plain text, never markup

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """The one place worker failures become visible: a notification and the error line."""
        self.notify(f"{message.worker_name} failed: {message.error}", severity="error", timeout=10)
        self.set_status(f"error ({message.worker_name}): {message.error}", "error")

    def on_train_finished(self, message: TrainFinished) -> None:
        failed = message.status == "failed"
        self.set_status(
            f"run {message.run_id}: {message.status}" + (f" — {message.error}" if message.error else ""),
            "error" if failed else "information",
        )
        if not failed or message.error:
            self.notify(
                f"training {message.status}: run {message.run_id}",
                severity="warning" if message.status != "done" else "information",
            )
        if message.run_id and not failed:
            self.offer_run(message.run_id, message.status)
        self.announce(f"run {message.run_id} {message.status}", message.error or "training ended")
        runs = self.mounted(RunsPane)
        if runs is not None:
            runs.action_refresh_runs()

    def on_overrides_changed(self, message: OverridesChanged) -> None:
        data = self.mounted(DataPane)
        if data is not None:
            data.set_decisions(message.overrides)
        count = len(message.overrides)
        decisions = f"{count} label decision{'' if count == 1 else 's'}"
        self.set_status(f"{decisions} in {message.path} · to train with them: t in the map, or the Train form")

    async def on_train_with_overrides(self, message: TrainWithOverrides) -> None:
        await self.action_show_pane("train")
        self.query_one(TrainPane).use_overrides(message.path)

    async def on_send_to_predict(self, message: SendToPredict) -> None:
        await self.action_show_pane("predict")
        if message.pinned is not None:  # a minimal pair: A pinned, B in the box
            self.query_one(PredictPane).pin_pair(message.pinned, message.sentence, message.label)
        else:
            self.query_one(PredictPane).set_sentence(message.sentence, message.label)

    # ------------------------------------------------------------ quitting

    async def action_quit(self) -> None:
        train = self.mounted(TrainPane)
        if train is not None and train.is_training:
            self.push_screen(ConfirmQuit(str(train.live_run)), self._quit_answered)
        else:
            # no pane is begun from now on (also by a start queued before this key), and the one being
            # composed is let finish: a pane composed as the app closes loses its widgets under it (a
            # NoMatches traceback at exit)
            self.quitting = True
            if self.panes_mounted is not None:
                await asyncio.shield(self.panes_mounted)
            self.exit()

    def _quit_answered(self, answer: str | None) -> None:
        if answer == QUIT_LEAVE:
            self.quitting = True
            self.exit()  # the training goes on in its own process; a new workbench follows it again
        elif answer == QUIT_STOP:
            train = self.query_one(TrainPane)
            run_id = train.live_run
            train.action_stop()
            self.set_status("stopping the training at the next batch (saving a checkpoint), then quitting…")
            self.run_worker(self._exit_after_training(run_id), name="quit", group="quit")

    async def _exit_after_training(self, run_id: str | None) -> None:
        """Quit once RUN_ID's process has let go of the run (its checkpoint saved), or after a minute."""
        from workbench.core.runs.lock import RunLock

        if run_id is not None:
            folder = run_path(self.runs_dir, run_id)
            for _ in range(600):
                if not RunLock.is_locked(folder):
                    break
                await asyncio.sleep(0.1)
        self.quitting = True
        self.exit()

    # ------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from workbench_commands(self)


def run_without_joining(app: App[Any], **options: Any) -> int:
    """Run APP (App.run's OPTIONS) until it exits, and return its exit code without joining the worker
    threads still running: App.run's asyncio.run does (shutting down the loop's default executor), so a
    quit while a thread still imported transformers or loaded a model waited for it (4.7-5.9 s in a pty,
    ctrl+q 3 s after typing into Predict at launch; benchmarks/interactive.py busyquit). The caller
    ends the process next (os._exit), and those threads with it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app.run(loop=loop, **options)  # (an exception here propagates: the caller's traceback, no os._exit)
    return int(app.return_code or 0)


def make_app(
    model: str | None = None,
    data: str | None = None,
    runs_dir: Path | None = None,
    run: str | None = None,
    notify: bool | None = None,
    launcher: Callable[..., int] | None = None,
    overrides: Path | None = None,
) -> WorkbenchApp:
    """The workbench app, for the CLI, the tests and the screenshot script alike (LAUNCHER: how a
    training process is started, core `launch_training` by default; OVERRIDES: the label-overrides file
    the review of labels writes, `label-overrides.tsv` in the runs folder by default)."""
    return WorkbenchApp(
        model=model, data=data, runs_dir=runs_dir, run=run, notify=notify, launcher=launcher, overrides=overrides
    )
