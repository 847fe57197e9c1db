"""2 Train: the config form (validated as typed), start/stop/resume, live charts, progress, log,
early-stopping state and a system line (CPU, RAM, GPU)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Static
from textual.worker import Worker, WorkerState

from workbench.core.base.config import TrainConfig, form_fields, format_setting, parse_field
from workbench.core.base.events import EndEvent, EpochEvent, Event, StepEvent
from workbench.core.base.layout import CONFIG_FILE, is_run_folder, new_run_id, run_path
from workbench.tui.keys import Field
from workbench.tui.messages import (
    DetachedStarted,
    StatusChanged,
    SystemSampled,
    TrainEvent,
    TrainFinished,
    TrainProgress,
)
from workbench.tui.panes.base import Pane
from workbench.tui.style import status_text, tone, toned
from workbench.tui.widgets.log import TextLog
from workbench.tui.widgets.run_charts import RunCharts

FORM_FIELDS = [f.name for f in form_fields()]
PROGRESS_EVERY = 0.25  # seconds between the training thread's progress messages (the charts redraw at 4 Hz)
END_HINTS = {"done": "evaluate it in 3, try sentences in 4", "stopped": "r resumes from the checkpoint",
             "failed": "r resumes from the last checkpoint"}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def patience_text(patience: int, epochs_since_best: int) -> str:
    """Early stopping: how many more epochs without a better validation MCC it allows."""
    if not patience:
        return ""
    return f"patience {max(0, patience - epochs_since_best)}/{patience} left"


class TrainPane(Pane):
    """Configure, start, watch, stop and resume one training at a time."""

    BINDINGS = [
        Binding("s", "start", "Start", tooltip="start a training with the form's settings (enter in a field too)"),
        Binding("D", "start_detached", "Detach",
                tooltip="start it in a background process that outlives the app (like train --detach)"),
        Binding("x", "stop", "Stop", tooltip="stop at the next batch, saving a checkpoint (a followed run too)"),
        Binding("r", "resume", "Resume", tooltip="resume the chosen run from its checkpoint"),
        Binding("c", "toggle_form", "Form", tooltip="show / hide the settings form (tab enters it)"),
        Binding("l", "log_scale", "Log", show=False, tooltip="loss chart on a log / linear scale"),
        Binding("m", "smoothing", "Smooth", show=False,
                tooltip="cycle the loss smoothing (off, 0.6, 0.8, 0.9, 0.95, 0.99)"),
    ]
    HELP = ("The header: epoch, step, ETA; loss, speed, early-stopping patience left; device, CPU, RAM and GPU.\n"
            "Charts: loss (• raw, ⣿ smoothed), validation MCC (⣿) and accuracy (•) with ★ at the best epoch, "
            "learning rate, gradient norm (under 70 columns: loss and validation only).")

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        # the form shown from the start: a class set before the first styling (set in on_mount, it
        # restyled the pane's 70 widgets again, a quarter of a second of every start)
        super().__init__(id=id, classes="-form")
        self.stop_event = threading.Event()
        self.worker: Worker[Any] | None = None
        self.training_run: str | None = None
        self.problems: dict[str, str] = {}
        self.progress: StepEvent | None = None
        self.memory = ""
        self.device = ""
        self.system = ""
        self.patience = 0
        self.state = "idle"  # idle, starting, running, stopping
        self.following: str | None = None  # a run training in another process, followed by the app
        self.headline: Text = Text("no training yet: check the form, then press s (or enter in a field)")
        self.last_status = ""

    @property
    def is_training(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def compose(self) -> ComposeResult:
        header = Static("", id="train-progress")
        header.can_focus = True  # the pane's keys live here: focusing the pane would restyle all its widgets
        yield header
        with Horizontal(id="train-body"):
            with Vertical(id="train-form"):
                yield Static("", id="form-problems")
                fields_box = VerticalScroll(id="form-fields")
                fields_box.can_focus = False  # tab goes straight to the fields
                with fields_box:
                    defaults = TrainConfig().to_dict()
                    for name in FORM_FIELDS:
                        with Horizontal(classes="form-row"):
                            yield Label(name, classes="form-label")
                            yield Field(str(defaults[name]), id=f"field-{name}", compact=True,
                                        classes="form-input", select_on_focus=False)
            with Horizontal(id="train-main"):
                yield RunCharts(prefix="chart", id="train-charts")
                yield TextLog(id="train-log")

    @property
    def charts(self) -> RunCharts:
        return self.query_one("#train-charts", RunCharts)

    def on_mount(self) -> None:
        self.set_config(self.workbench.initial_config())
        self.validate_form()
        self.show_progress()
        self.set_interval(1.0, self.sample_system)

    def focus_default(self, leaving_field: bool = False) -> None:
        # Not a field: number keys keep switching panes; tab enters the form. The header, not the pane:
        # a focus change restyles the focused widget's subtree (70 widgets for the pane, under 0.1 s here).
        self.focus_on(self.query_one("#train-progress"))

    # ------------------------------------------------------------ the system line

    def sample_system(self) -> None:
        if self.workbench.active_pane == "train" or self.is_training:
            self.system_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="system", name="system monitor")
    def system_worker(self) -> None:
        self.post_message(SystemSampled(self.workbench.system_monitor().sample()))

    def on_system_sampled(self, message: SystemSampled) -> None:
        self.system = message.sample.describe()
        self.show_progress()

    # ------------------------------------------------------------ the form

    def set_config(self, config: TrainConfig) -> None:
        values = config.to_dict()
        for name in FORM_FIELDS:
            field = self.query_one(f"#field-{name}", Input)
            field.value = format_setting(values[name])
            field.cursor_position = 0  # show the start of long values (model paths)
        self.patience = config.patience

    def read_form(self) -> tuple[TrainConfig | None, dict[str, str]]:
        """The config the form describes, or the problems by field."""
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name in FORM_FIELDS:
            text = self.query_one(f"#field-{name}", Input).value
            try:
                values[name] = parse_field(name, text)
            except ValueError as err:
                problems[name] = str(err).split(": ", 1)[-1]
        if problems:
            return None, problems
        config = TrainConfig.from_dict(values)
        problems = config.validate()
        return (None if problems else config), problems

    def validate_form(self) -> None:
        config, self.problems = self.read_form()
        for name in FORM_FIELDS:
            self.query_one(f"#field-{name}", Input).set_class(name in self.problems, "-invalid")
        if self.problems:
            text = Text()
            for name, problem in self.problems.items():
                text.append(f"✗ {name}", style=tone("bad"))
                text.append(f": {problem}\n")
            text.rstrip()
        else:
            text = toned("✓ valid: enter starts", "good")
            if config is not None and not config.batch_size:  # 0: the run picks it by the epochs; say which
                text.append(f" · batch {config.effective_batch_size}")
        self.query_one("#form-problems", Static).update(text)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # Entering a field puts the cursor after its value (nothing selected: a digit typed is added,
        # never replaces the value; ctrl+u clears it)
        if isinstance(event.widget, Input):
            event.widget.cursor_position = len(event.widget.value)
        for row in self.query(".form-row"):  # its label marked (reverse): the focus shows without colour
            row.set_class(row is event.widget.parent, "-focused")

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        if isinstance(event.widget, Input) and event.widget.parent is not None:
            event.widget.parent.set_class(False, "-focused")

    @on(Input.Changed, ".form-input")
    def _field_changed(self) -> None:
        self.validate_form()

    @on(Input.Submitted, ".form-input")
    def _field_submitted(self) -> None:
        self.action_start()

    def action_toggle_form(self) -> None:
        self.show_form(not self.query_one("#train-form").display)
        self.focus_default()  # the pane keeps the keys; tab enters the form

    def show_form(self, shown: bool) -> None:
        """The form beside the charts; under 110 columns the log gives way to it."""
        self.query_one("#train-form").display = shown
        self.set_class(shown, "-form")

    def action_log_scale(self) -> None:
        self.post_message(StatusChanged(self.charts.toggle_log()))

    def action_smoothing(self) -> None:
        self.post_message(StatusChanged(self.charts.cycle_smoothing()))

    # ------------------------------------------------------------ start, stop, resume

    def form_config(self) -> TrainConfig | None:
        config, problems = self.read_form()
        if config is None:
            self.validate_form()
            self.notify(f"not started: fix {', '.join(problems)}", severity="error")
        return config

    def action_start(self) -> None:
        if self.is_training:
            self.notify("a training is already running: stop it first (x)", severity="warning")
            return
        config = self.form_config()
        if config is None:
            return
        runs_dir = self.workbench.runs_dir
        self.launch(config, run_path(runs_dir, new_run_id(runs_dir)), resume=False)

    def action_start_detached(self) -> None:
        """Start the form's config as a background process, as `workbench train --detach` does:
        it outlives the app; the app follows it (x stops it, with a checkpoint)."""
        config = self.form_config()
        if config is None:
            return
        runs_dir = self.workbench.runs_dir
        run_dir = run_path(runs_dir, new_run_id(runs_dir))
        run_dir.mkdir(parents=True, exist_ok=True)  # claims the id at once: a second D gets another
        self.patience = config.patience
        self.set_headline(f"run {run_dir.name}: starting in the background…")
        self.show_form(False)
        self.focus_default()
        self.post_message(StatusChanged(f"starting {run_dir.name} in the background"))
        self.launch_detached(config, run_dir)

    @work(thread=True, exit_on_error=False, group="detach", name="start in the background")
    def launch_detached(self, config: TrainConfig, run_dir: Path) -> None:
        from workbench.core.runs.status import launch_training

        pid = launch_training(config, run_dir)
        self.post_message(DetachedStarted(run_dir.name, pid))

    def action_resume(self) -> None:
        if self.is_training:
            self.notify("a training is already running", severity="warning")
            return
        run_id = self.training_run or self.workbench.current_run
        if not run_id:
            self.notify("no run to resume: choose one in Runs (5)", severity="warning")
            return
        run_dir = run_path(self.workbench.runs_dir, run_id)
        if not is_run_folder(run_dir):
            self.notify(f"{run_id}: not a run folder", severity="error")
            return
        self.load_history(run_dir)
        self.launch(TrainConfig.load(run_dir / CONFIG_FILE), run_dir, resume=True)

    def launch(self, config: TrainConfig, run_dir: Path, resume: bool) -> None:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        self.stop_event = threading.Event()
        self.training_run = run_dir.name
        self.workbench.own_runs.add(run_dir.name)
        self.patience = config.patience
        self.state = "starting"
        if not resume:
            self.clear_charts()
        self.log_line(Text.assemble(("resuming" if resume else "starting", "bold"),
                                    f" run {run_dir.name}: loading the model…"))
        self.progress = None
        self.set_headline(f"run {run_dir.name}: loading data and model…")
        self.show_form(False)
        self.focus_default()
        self.worker = self.run_training(config, run_dir, resume, self.stop_event)
        self.post_message(StatusChanged(f"training {run_dir.name}"))

    def action_stop(self) -> None:
        if not self.is_training and self.following:
            self.stop_followed()
            return
        if not self.is_training:
            self.notify("no training is running", severity="warning")
            return
        self.stop_event.set()
        self.state = "stopping"
        self.set_headline(f"run {self.training_run}: stopping at the next batch (a checkpoint is saved)…", "warn")

    def stop_followed(self) -> None:
        """Ask the followed run (another process) to stop at its next batch: core `stop_run`."""
        from workbench.core.base.layout import RunError
        from workbench.core.runs.status import stop_run

        try:
            stop_run(run_path(self.workbench.runs_dir, str(self.following)))
        except RunError as err:
            self.notify(str(err), severity="error")
            return
        self.set_headline(f"run {self.following}: stopping at the next batch (a checkpoint is saved)…", "warn")
        self.notify(f"{self.following}: stopping at the next batch (a checkpoint is saved first)")

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", name="training")
    def run_training(self, config: TrainConfig, run_dir: Path, resume: bool, stop: threading.Event) -> Any:
        """Drive core `train()`; this thread only posts messages, never touches widgets."""
        from workbench.core.base.hardware import device_memory
        from workbench.core.model.loading import quiet_transformers
        from workbench.core.training.train import train

        quiet_transformers()
        run_id = run_dir.name
        memory: dict[str, Any] = {"at": 0.0, "text": ""}  # device memory, read at most once a second
        steps: list[StepEvent] = []  # not posted yet
        posted = [0.0]

        def post_steps() -> None:
            if steps:  # the clock restarts at a post: the first step after a quiet spell goes at once
                self.post_message(TrainProgress(run_id, steps.copy(), memory=str(memory["text"])))
                steps.clear()
                posted[0] = time.monotonic()

        def on_event(event: Event) -> None:
            if event["kind"] == "step":
                # Steps go to the app in bunches, PROGRESS_EVERY apart: each message wakes the app's thread, and
                # every wake-up takes the GIL from the training between its ops (one message per step, 25 a
                # second at batch 8, cost a training in the app half its speed; benchmarks/README.md)
                steps.append(event)  # type: ignore[arg-type]  # a "step" event
                now = time.monotonic()
                if now - float(memory["at"]) > 1.0:
                    memory.update(at=now, text=device_memory())
                if now - posted[0] >= PROGRESS_EVERY:
                    post_steps()
            else:
                post_steps()  # in order: the steps before an epoch's end are charted before it
                self.post_message(TrainEvent(run_id, event))

        try:
            result = train(config, run_dir, on_event=on_event, stop=stop, resume=resume)
        finally:
            post_steps()
        self.post_message(TrainFinished(run_id, result.status, result.error))
        return result

    def worker_state_changed(self, worker: Worker, state: WorkerState) -> None:
        if worker is not self.worker or state not in (WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self.state = "idle"
        error = str(worker.error) if worker.error else "cancelled"
        self.log_line(toned(f"training failed: {error}", "bad"))
        self.set_headline(f"run {self.training_run} failed: {error} — fix and press s or r", "bad")
        self.post_message(TrainFinished(self.training_run or "", "failed", error))

    # ------------------------------------------------------------ events from the worker

    def on_train_progress(self, message: TrainProgress) -> None:
        self.charts.add_events(message.steps)
        if message.steps:
            self.progress = message.steps[-1]
        self.memory = message.memory or self.memory
        if self.state == "starting":
            self.state = "running"
            self.set_headline(f"run {self.training_run}: training · x stops (with a checkpoint)")
        self.show_progress()

    def on_train_event(self, message: TrainEvent) -> None:
        self.charts.add_events([message.event])
        self.handle_event(message.event)

    def handle_event(self, event: Event) -> None:
        """A low-rate event (start, epoch, log, checkpoint, end) of the shown run, for the log."""
        if event["kind"] == "start":
            self.device = event["device"]
            resumed = event["resumed_at_step"]
            self.log_line(f"{event['train_sentences']} training sentences, {event['steps_per_epoch']} "
                          f"steps/epoch × {event['epochs']} epochs on {self.device}, precision "
                          f"{event['precision']}" + (f"; resumed at step {resumed}" if resumed else ""))
            if self.state == "starting" and self.is_training:
                self.state = "running"
                self.set_headline(f"run {self.training_run}: training · x stops (with a checkpoint)")
        elif event["kind"] == "epoch":
            self.log_line(epoch_line(event))
            self.show_progress()
        elif event["kind"] == "log":
            self.log_line(event["message"])
        elif event["kind"] == "checkpoint":
            self.log_line(toned(f"checkpoint at step {event['step']}", "muted"))
        elif event["kind"] == "end":
            self.log_line(end_line(event))

    def on_train_finished(self, message: TrainFinished) -> None:
        if self.state == "idle" and message.status == "failed":
            return  # already reported by worker_state_changed
        self.state = "idle"
        self.show_end(message.run_id, message.status, message.error)

    def show_end(self, run_id: str, status: str, error: str = "") -> None:
        headline = Text(f"run {run_id} ")
        headline.append_text(status_text(status))
        headline.append(f" — {error if status == 'failed' and error else END_HINTS.get(status, '')}")
        self.headline = headline
        self.show_progress()

    # ------------------------------------------------------------ showing a run

    def show_run(self, run_id: str | None) -> None:
        """Called by the app when the user opens a run: show its config and history."""
        if self.is_training or not run_id:
            return
        from workbench.core.runs.lock import RunLock

        run_dir = run_path(self.workbench.runs_dir, run_id)
        if is_run_folder(run_dir):
            self.set_config(TrainConfig.load(run_dir / CONFIG_FILE).as_requested())
            self.validate_form()
        self.training_run = run_id
        self.following = None
        self.show_form(False)  # the run's charts; c shows its settings
        if run_dir.is_dir() and RunLock.is_locked(run_dir):  # training in another process: followed
            self.following = run_id
            self.clear_charts()
            self.progress = None
            self.set_headline(f"run {run_id}: training in another process; following it (x stops it)…")
            return
        self.load_history(run_dir)

    def add_followed(self, run_id: str, events: list[Event]) -> None:
        """Events of the followed run, read from its metrics.jsonl: the history, then live."""
        if run_id != self.following or self.is_training:
            return
        self.charts.add_events(events)
        for event in events:
            if event["kind"] == "step":
                self.progress = event
            else:
                self.handle_event(event)
        if self.progress and "stopping" not in self.headline.plain:
            self.set_headline(f"run {run_id}: training in the background · x stops it")

    def follow_ended(self, run_id: str) -> None:
        if run_id != self.following:
            return
        from workbench.core.runs.status import run_info

        self.following = None
        info = run_info(run_path(self.workbench.runs_dir, run_id))
        self.show_end(run_id, info.status, info.error)

    def load_history(self, run_dir: Path) -> None:
        from workbench.core.runs.metrics import read_metrics
        from workbench.core.runs.status import run_info

        self.clear_charts()
        events = read_metrics(run_dir)
        self.charts.add_events(events)
        last_step: StepEvent | None = None
        for event in events:
            if event["kind"] == "step":
                last_step = event
            elif event["kind"] != "checkpoint":
                self.handle_event(event)  # the log as it was written: start, epochs, messages, end
        self.progress = last_step
        info = run_info(run_dir)
        headline = Text(f"run {run_dir.name} ")
        headline.append_text(status_text(info.status))
        hint = END_HINTS.get(info.status, "")
        self.headline = headline + Text(f" · {hint}" if hint else "")
        self.show_progress()

    def clear_charts(self) -> None:
        self.charts.clear()
        self.query_one("#train-log", TextLog).clear()

    # ------------------------------------------------------------ the header: 3 lines, most important first

    def set_headline(self, text: str, kind: str = "") -> None:
        self.headline = toned(text, kind)
        self.show_progress()

    def show_progress(self) -> None:
        lines = [self.headline, Text(self.progress_line()), Text(self.machine_line())]
        text = Text("\n").join(lines)
        self.last_status = text.plain
        self.query_one("#train-progress", Static).update(text)

    def progress_line(self) -> str:
        p = self.progress
        if not p:
            return "epoch — · step — · ETA —"
        parts = [f"epoch {p['epoch']}/{self.epochs_total()}", f"step {p['step']}/{p['total_steps']}",
                 f"ETA {format_duration(p['eta_s'])}", f"loss {p['loss']:.3f}",
                 patience_text(self.patience, self.charts.series.epochs_since_best),
                 f"{p['sentences_per_s']:.0f} sent/s", f"{format_duration(p['elapsed_s'])} elapsed"]
        return " · ".join(part for part in parts if part)

    def machine_line(self) -> str:
        return " · ".join(part for part in (self.device, self.memory, self.system) if part)

    def epochs_total(self) -> str:
        if self.progress is None or not self.progress["steps_per_epoch"]:
            return "?"
        return str(self.progress["total_steps"] // self.progress["steps_per_epoch"])

    def log_line(self, text: Text | str) -> None:
        self.query_one("#train-log", TextLog).write(text)


def epoch_line(event: EpochEvent) -> Text:
    """`ep 3 MCC 0.412★ acc 0.701 loss 0.41/0.52`: the number it exists for first, ★ a new best."""
    line = Text(f"ep {event['epoch']} ")
    line.append(f"MCC {event['val_mcc']:.3f}", style="bold")
    if event["best"]:
        line.append("★", style=tone("good"))
    line.append(f" acc {event['val_accuracy']:.3f} loss {event['train_loss']:.2f}/{event['val_loss']:.2f}")
    return line


def end_line(event: EndEvent) -> Text:
    status = event["status"]
    if status == "done" and "holdout_mcc" in event:
        line = Text.assemble(("done", "bold"), f": holdout MCC {event['holdout_mcc']:.3f} · "
                             f"acc {event.get('holdout_accuracy', 0.0):.3f}")
        if event.get("holdout_warning"):
            line.append("\n⚠ " + event["holdout_warning"].removeprefix("WARNING: "), style=tone("bad"))
        return line
    if status == "failed":
        return toned(f"failed: {event.get('error')}", "bad")
    return Text.assemble((status, "bold"), f" at step {event.get('step')}")
