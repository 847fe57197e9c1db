"""The workbench app: five panes, bindings, command palette, and the shared model cache.

Importing this module is cheap: torch, transformers, pandas and sklearn are imported
inside workers after the first paint (a test proves it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static, TabbedContent, TabPane, Tabs
from textual.worker import get_current_worker

from workbench.core.config import DEFAULT_MODEL, TrainConfig, default_runs_dir
from workbench.core.runs import ModelSource
from workbench.tui.messages import (
    DetachedStarted,
    FollowEnded,
    RunChosen,
    RunFollowed,
    RunsRefreshed,
    SendToPredict,
    StatusChanged,
    TrainEvent,
    TrainFinished,
    WorkerFailed,
)
from workbench.tui.panes.base import Pane
from workbench.tui.panes.data import SPLITS, DataPane
from workbench.tui.panes.evaluate import DATASETS, EvaluatePane
from workbench.tui.panes.predict import PredictPane
from workbench.tui.panes.runs import RunsPane
from workbench.tui.panes.train import TrainPane
from workbench.tui.widgets.dialogs import ConfirmQuit, HelpScreen

PANES = ("data", "train", "evaluate", "predict", "runs")
TITLES = {"data": "1 Data", "train": "2 Train", "evaluate": "3 Evaluate", "predict": "4 Predict", "runs": "5 Runs"}


class WorkbenchApp(App[None]):
    """CoLA Workbench: browse data, train, evaluate and try sentences, by keyboard."""

    CSS_PATH = "app.tcss"
    TITLE = "CoLA Workbench"
    BINDINGS = [
        *[Binding(str(i + 1), f"show_pane('{pane}')", TITLES[pane][2:], show=False) for i, pane in enumerate(PANES)],
        Binding("question_mark,f1", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, model: str | None = None, data: str | None = None, runs_dir: Path | None = None,
                 run: str | None = None, load_on_start: bool = True) -> None:
        super().__init__()
        self.model = model or DEFAULT_MODEL
        self.data = data or ""
        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.current_run: str | None = None
        self.initial_run = run
        self.load_on_start = load_on_start
        self.runs: list[Any] = []
        self.followed_run: str | None = None
        self._predictors: dict[str, tuple[Any, str, bool]] = {}
        self._predictor_lock = threading.Lock()
        if run:
            from workbench.core.runs import run_path

            folder = run_path(self.runs_dir, run)
            self.runs_dir = folder.parent
            self.current_run = folder.name

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="train" if self.current_run else "data", id="panes"):
            with TabPane(TITLES["data"], id="data"):
                yield DataPane(id="data-pane")
            with TabPane(TITLES["train"], id="train"):
                yield TrainPane(id="train-pane")
            with TabPane(TITLES["evaluate"], id="evaluate"):
                yield EvaluatePane(id="evaluate-pane")
            with TabPane(TITLES["predict"], id="predict"):
                yield PredictPane(id="predict-pane")
            with TabPane(TITLES["runs"], id="runs"):
                yield RunsPane(id="runs-pane")
        yield Static("starting…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self.current_run:
            self.call_after_refresh(self.open_run, self.current_run)
        if self.load_on_start:
            # After the first paint: the heavy imports happen in the worker, behind a loading state.
            self.call_after_refresh(self.load_data)
        self.call_after_refresh(self.focus_pane)

    def load_data(self) -> None:
        self.query_one(DataPane).load(self.data or None, self.model)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Notifications carry file names, data and sentences: never parse them as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def initial_config(self) -> TrainConfig:
        return TrainConfig(model=self.model, data=self.data)

    # ------------------------------------------------------------ panes

    def pane(self, name: str) -> Pane:
        return self.query_one(f"#{name}-pane", Pane)

    @property
    def active_pane(self) -> str:
        return self.query_one(TabbedContent).active or "data"

    def action_show_pane(self, name: str) -> None:
        tabbed = self.query_one(TabbedContent)
        tabbed.active = name
        # Show the pane now rather than when the tab message arrives: hidden widgets refuse focus,
        # and a key typed right after the number must reach the new pane.
        tabbed.get_child_by_type(ContentSwitcher).current = name
        self.focus_pane()

    def focus_pane(self) -> None:
        self.pane(self.active_pane).focus_default()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if self.active_pane == "runs":
            self.query_one(RunsPane).action_refresh_runs()
        if isinstance(self.focused, Tabs):
            return  # browsing tabs with the arrow keys: keep the focus on the tab bar
        self.focus_pane()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # ------------------------------------------------------------ runs and models

    def open_run(self, run_id: str | None) -> None:
        self.current_run = run_id
        for name in PANES:
            show = getattr(self.pane(name), "show_run", None)
            if show is not None:
                show(run_id)
        self.set_status(f"run {run_id} opened" if run_id else "no run chosen")
        self.follow_run(run_id)

    # ------------------------------------------------------------ following a run's metrics.jsonl

    def follow_run(self, run_id: str | None) -> None:
        """Replay RUN_ID's events into the Runs charts (and the Train pane when it trains in another
        process), then follow them live until it ends; the run followed before is let go."""
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
        from workbench.core.runs import follow_run

        worker = get_current_worker()
        for batch in follow_run(self.runs_dir / run_id, cancelled=lambda: worker.is_cancelled):
            if worker.is_cancelled:
                return
            self.post_message(RunFollowed(run_id, batch))
        self.post_message(FollowEnded(run_id, cancelled=worker.is_cancelled))

    def on_run_followed(self, message: RunFollowed) -> None:
        if message.run_id != self.followed_run:
            return  # a message of a run let go, still queued
        self.query_one(RunsPane).add_events(message.run_id, message.events)
        self.query_one(TrainPane).add_followed(message.run_id, message.events)

    def on_follow_ended(self, message: FollowEnded) -> None:
        if message.cancelled:
            return
        self.query_one(TrainPane).follow_ended(message.run_id)
        self.query_one(RunsPane).action_refresh_runs()

    def on_detached_started(self, message: DetachedStarted) -> None:
        self.notify(f"run {message.run_id} training in the background (pid {message.pid}); it goes on after "
                    "you quit. x stops it", timeout=6)
        self.open_run(message.run_id)
        self.query_one(RunsPane).action_refresh_runs()

    def on_run_chosen(self, message: RunChosen) -> None:
        self.open_run(message.run_id)
        self.notify(f"opened run {message.run_id}", timeout=3)

    def on_runs_refreshed(self, message: RunsRefreshed) -> None:
        self.runs = list(message.runs)

    def model_source(self, run_id: str | None) -> ModelSource:
        """What the panes classify with: RUN_ID's model (core `model_source`), or the base model."""
        from workbench.core.runs import model_source

        return model_source(self.runs_dir / run_id if run_id else None, self.model)

    def get_predictor(self, run_id: str | None, on_status: Callable[[Any], Any] | None = None) -> tuple[Any, str, bool]:
        """A cached `Predictor` for RUN_ID (thread-safe; call from workers: it may load a model)."""
        source = self.model_source(run_id)
        model_file = Path(source.source) / "model.safetensors"  # a new best epoch replaces it: reload
        key = f"{source.source}@{model_file.stat().st_mtime_ns if model_file.exists() else 0}"
        with self._predictor_lock:
            if key not in self._predictors:
                if on_status is not None:
                    on_status(StatusChanged(f"loading model {source.label}…"))
                from workbench.core.model import quiet_transformers
                from workbench.core.predict import Predictor

                quiet_transformers()
                self._predictors[key] = (Predictor.load(source.source), source.label, source.finetuned)
            return self._predictors[key]

    def data_for(self, run_id: str | None) -> Any:
        """RUN_ID's data, split as in its training (core `load_run_data`); the app's data without a run."""
        from workbench.core.runs import load_run_data

        if run_id:
            return load_run_data(self.runs_dir / run_id)
        return load_run_data(None, self.data or None)

    # ------------------------------------------------------------ messages from panes

    def on_status_changed(self, message: StatusChanged) -> None:
        self.set_status(message.text, message.severity)

    def set_status(self, text: str, severity: str = "information") -> None:
        status = self.query_one("#status", Static)
        status.set_class(severity == "error", "-error")
        status.update(Text(text))  # paths, data and errors: plain text, never markup

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """The one place worker failures become visible: a notification and the error line."""
        self.notify(f"{message.worker_name} failed: {message.error}", severity="error", timeout=10)
        self.set_status(f"error ({message.worker_name}): {message.error}", "error")

    def on_train_event(self, message: TrainEvent) -> None:
        if message.event["kind"] == "start":
            self.current_run = message.run_id
            self.query_one(RunsPane).action_refresh_runs()
            self.follow_run(message.run_id)  # the Runs charts move with it; the Train pane has its own

    def on_train_finished(self, message: TrainFinished) -> None:
        colour = "error" if message.status == "failed" else "information"
        self.set_status(f"run {message.run_id}: {message.status}" + (f" — {message.error}" if message.error else ""),
                        colour)
        if message.status != "failed" or message.error:
            self.notify(f"training {message.status}: run {message.run_id}",
                        severity="warning" if message.status != "done" else "information")
        if message.run_id:
            self.open_run(message.run_id)
        self.query_one(RunsPane).action_refresh_runs()

    def on_send_to_predict(self, message: SendToPredict) -> None:
        self.action_show_pane("predict")
        self.query_one(PredictPane).set_sentence(message.sentence)

    # ------------------------------------------------------------ quitting

    async def action_quit(self) -> None:
        if self.query_one(TrainPane).is_training:
            self.push_screen(ConfirmQuit(), self._quit_answered)
        else:
            self.exit()

    def _quit_answered(self, answer: bool | None) -> None:
        if answer:
            train = self.query_one(TrainPane)
            train.action_stop()
            self.set_status("stopping the training at the next batch (saving a checkpoint), then quitting…")
            self.run_worker(self._exit_after_training(), name="quit", group="quit")

    async def _exit_after_training(self) -> None:
        worker = self.query_one(TrainPane).worker
        if worker is not None:
            try:
                await worker.wait()
            except Exception:  # noqa: BLE001 - a failed run has saved what it could; quit anyway
                pass
        self.exit()

    # ------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        train = partial(self.call_pane, "train")
        yield SystemCommand("train: start", "Start a new training with the form's settings", train("action_start"))
        yield SystemCommand("train: start detached", "Train the form's settings in a background process that "
                            "outlives the app (like train --detach)", train("action_start_detached"))
        yield SystemCommand("train: stop", "Stop at the next batch, saving a checkpoint", train("action_stop"))
        yield SystemCommand("train: resume", "Resume the chosen run from its checkpoint", train("action_resume"))
        yield SystemCommand("train: show/hide form", "Toggle the configuration form", train("action_toggle_form"))
        for dataset in DATASETS:
            yield SystemCommand(f"eval: {dataset}", f"Evaluate the chosen run on {dataset}",
                                partial(self.evaluate, dataset))
        for split in SPLITS:
            yield SystemCommand(f"data: {split}", f"Show the {split} split", partial(self.show_split, split))
        yield SystemCommand("data: search", "Search sentences", partial(self.call_pane, "data", "action_search")())
        yield SystemCommand("predict: sentence box", "Type a sentence", partial(self.action_show_pane, "predict"))
        runs = partial(self.call_pane, "runs")
        yield SystemCommand("runs: refresh", "List the runs again", runs("action_refresh_runs"))
        yield SystemCommand("runs: mark", "Mark the highlighted run for comparing", runs("action_toggle_mark"))
        yield SystemCommand("runs: compare marked", "Loss and validation MCC overlaid, differing settings",
                            runs("action_compare"))
        yield SystemCommand("runs: diff marked", "Where two marked runs' predictions disagree",
                            runs("action_diff"))
        yield SystemCommand("runs: stop", "Stop the highlighted run at its next batch (detached too)",
                            runs("action_stop_run"))
        yield SystemCommand("runs: export CSV", "Write the highlighted run's metrics to runs/<id>/metrics.csv",
                            runs("action_export_csv"))
        for name in PANES:
            yield SystemCommand(f"go: {TITLES[name]}", f"Switch to the {name} pane",
                                partial(self.action_show_pane, name))
        yield SystemCommand("help: keys", "Every key of the workbench", self.action_help)
        for info in self.runs:
            best = f"best val MCC {info.best_val_mcc:.3f}" if info.best_val_mcc is not None else "no epoch yet"
            yield SystemCommand(f"open run {info.id}", f"{info.status}, {best}", partial(self.pick_run, info.id))

    def call_pane(self, pane: str, action: str) -> Callable[[], None]:
        def call() -> None:
            self.action_show_pane(pane)
            getattr(self.pane(pane), action)()
        return call

    def evaluate(self, dataset: str) -> None:
        self.action_show_pane("evaluate")
        self.query_one(EvaluatePane).action_evaluate(dataset)

    def show_split(self, split: str) -> None:
        self.action_show_pane("data")
        self.query_one(DataPane).set_split(split)

    def pick_run(self, run_id: str) -> None:
        self.open_run(run_id)
        self.query_one(RunsPane).show_runs()


def make_app(model: str | None = None, data: str | None = None, runs_dir: Path | None = None,
             run: str | None = None) -> WorkbenchApp:
    """The workbench app, for the CLI, the tests and the screenshot script alike."""
    return WorkbenchApp(model=model, data=data, runs_dir=runs_dir, run=run)
