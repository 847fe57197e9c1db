"""2 Train: the config form (validated as typed), start/stop/resume, live charts, progress, log."""

from __future__ import annotations

import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, RichLog, Static
from textual.worker import Worker, WorkerState

from workbench.core.config import TrainConfig, parse_field
from workbench.core.events import EndEvent, EpochEvent, Event, StepEvent
from workbench.tui.messages import DetachedStarted, StatusChanged, TrainEvent, TrainFinished, TrainProgress
from workbench.tui.panes.base import Pane
from workbench.tui.widgets.charts import LossSmoother, SeriesChart

FORM_FIELDS = [f.name for f in fields(TrainConfig) if f.name != "extra"]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TrainPane(Pane):
    """Configure, start, watch, stop and resume one training at a time."""

    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("D", "start_detached", "Background"),
        Binding("x", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("c", "toggle_form", "Form"),
        Binding("escape", "leave_form", "Leave form", show=False),
    ]

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.stop_event = threading.Event()
        self.worker: Worker[Any] | None = None
        self.training_run: str | None = None
        self.problems: dict[str, str] = {}
        self.progress: StepEvent | None = None
        self.smoother = LossSmoother()
        self.memory = ""
        self.device = ""
        self.state = "idle"  # idle, starting, running, stopping
        self.following: str | None = None  # a run training in another process, followed by the app
        self.last_status = ""

    @property
    def is_training(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def compose(self) -> ComposeResult:
        yield Static("no training yet: check the form, then press s (or enter in a field)", id="train-progress")
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
                            yield Input(str(defaults[name]), id=f"field-{name}", compact=True,
                                        classes="form-input")
            with Vertical(id="train-charts"):
                with Horizontal(classes="chart-row"):
                    yield SeriesChart("loss per batch", ["loss", "smoothed"], xlabel="step",
                                      markers=["dot", "braille"], id="chart-loss")
                    yield SeriesChart("learning rate", ["lr"], xlabel="step", id="chart-lr")
                with Horizontal(classes="chart-row"):
                    yield SeriesChart("validation", ["mcc", "accuracy"], xlabel="epoch", markers=["hd", "hd"],
                                      id="chart-val")
                    yield RichLog(id="train-log", wrap=True, markup=True, max_lines=500, min_width=20)

    def on_mount(self) -> None:
        self.set_config(self.workbench.initial_config())
        self.validate_form()

    def focus_default(self) -> None:
        # The pane itself, not a field: number keys keep switching panes; tab enters the form.
        self.focus()

    # ------------------------------------------------------------ the form

    def set_config(self, config: TrainConfig) -> None:
        values = config.to_dict()
        for name in FORM_FIELDS:
            field = self.query_one(f"#field-{name}", Input)
            field.value = str(values[name])
            field.cursor_position = 0  # show the start of long values (model paths)

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
        _, self.problems = self.read_form()
        for name in FORM_FIELDS:
            self.query_one(f"#field-{name}", Input).set_class(name in self.problems, "-invalid")
        text = "\n".join(f"[b]{name}[/b]: {problem}" for name, problem in self.problems.items())
        self.query_one("#form-problems", Static).update(
            f"[red]{text}[/red]" if text else "[green]valid: enter starts[/green]")

    @on(Input.Changed, ".form-input")
    def _field_changed(self) -> None:
        self.validate_form()

    @on(Input.Submitted, ".form-input")
    def _field_submitted(self) -> None:
        self.action_start()

    def action_toggle_form(self) -> None:
        form = self.query_one("#train-form")
        form.display = not form.display
        self.focus()  # the pane keeps the keys; tab enters the form

    def action_leave_form(self) -> None:
        self.focus()

    # ------------------------------------------------------------ start, stop, resume

    def action_start(self) -> None:
        if self.is_training:
            self.notify("a training is already running: stop it first (x)", severity="warning")
            return
        config, problems = self.read_form()
        if config is None:
            self.validate_form()
            names = ", ".join(problems)
            self.notify(f"not started: fix {names}", severity="error")
            return
        from workbench.core.runs import new_run_id

        runs_dir = self.workbench.runs_dir
        run_id = new_run_id(runs_dir)
        self.launch(config, runs_dir / run_id, resume=False)

    def action_start_detached(self) -> None:
        """Start the form's config as a background process, as `workbench train --detach` does:
        it outlives the app; the app follows it (x stops it, with a checkpoint)."""
        config, problems = self.read_form()
        if config is None:
            self.validate_form()
            self.notify(f"not started: fix {', '.join(problems)}", severity="error")
            return
        from workbench.core.runs import new_run_id

        runs_dir = self.workbench.runs_dir
        run_dir = runs_dir / new_run_id(runs_dir)
        run_dir.mkdir(parents=True, exist_ok=True)  # claims the id at once: a second D gets another
        self.show_progress(f"run {run_dir.name}: starting in the background…")
        self.query_one("#train-form").display = False
        self.focus()
        self.post_message(StatusChanged(f"starting {run_dir.name} in the background"))
        self.launch_detached(config, run_dir)

    @work(thread=True, exit_on_error=False, group="detach", name="start in the background")
    def launch_detached(self, config: TrainConfig, run_dir: Path) -> None:
        from workbench.core.runs import launch_training

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
        run_dir = self.workbench.runs_dir / run_id
        if not (run_dir / "config.json").is_file():
            self.notify(f"{run_id}: not a run folder", severity="error")
            return
        self.load_history(run_dir)
        self.launch(TrainConfig.load(run_dir / "config.json"), run_dir, resume=True)

    def launch(self, config: TrainConfig, run_dir: Path, resume: bool) -> None:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        self.stop_event = threading.Event()
        self.training_run = run_dir.name
        self.state = "starting"
        if not resume:
            self.clear_charts()
        self.log_line(f"[b]{'resuming' if resume else 'starting'}[/b] run {run_dir.name}: loading the model…")
        self.progress = None
        self.show_progress(f"run {run_dir.name}: loading data and model…")
        self.query_one("#train-form").display = False
        self.focus()
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
        self.show_progress(f"run {self.training_run}: stopping at the next batch (a checkpoint is saved)…")

    def stop_followed(self) -> None:
        """Ask the followed run (another process) to stop at its next batch: core `stop_run`."""
        from workbench.core.runs import RunError, stop_run

        try:
            stop_run(self.workbench.runs_dir / str(self.following))
        except RunError as err:
            self.notify(str(err), severity="error")
            return
        self.show_progress(f"run {self.following}: stopping at the next batch (a checkpoint is saved)…")
        self.notify(f"{self.following}: stopping at the next batch (a checkpoint is saved first)")

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", name="training")
    def run_training(self, config: TrainConfig, run_dir: Path, resume: bool, stop: threading.Event) -> Any:
        """Drive core `train()`; this thread only posts messages, never touches widgets."""
        from workbench.core.model import quiet_transformers
        from workbench.core.train import device_memory, train

        quiet_transformers()
        run_id = run_dir.name
        memory: dict[str, Any] = {"at": 0.0, "text": ""}  # device memory, read at most once a second

        def on_event(event: Event) -> None:
            if event["kind"] == "step":
                now = time.monotonic()
                if now - float(memory["at"]) > 1.0:
                    memory.update(at=now, text=device_memory())
                self.post_message(TrainProgress(run_id, [event], memory=str(memory["text"])))
            else:
                self.post_message(TrainEvent(run_id, event))

        result = train(config, run_dir, on_event=on_event, stop=stop, resume=resume)
        self.post_message(TrainFinished(run_id, result.status, result.error))
        return result

    def worker_state_changed(self, worker: Worker, state: WorkerState) -> None:
        if worker is not self.worker or state not in (WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self.state = "idle"
        error = str(worker.error) if worker.error else "cancelled"
        self.log_line(f"[red]training failed: {escape(str(error))}[/red]")
        self.show_progress(f"[red]run {self.training_run} failed: {escape(str(error))}[/red] — fix and press s or r")
        self.post_message(TrainFinished(self.training_run or "", "failed", error))

    # ------------------------------------------------------------ events from the worker

    def on_train_progress(self, message: TrainProgress) -> None:
        loss_chart = self.query_one("#chart-loss", SeriesChart)
        lr_chart = self.query_one("#chart-lr", SeriesChart)
        for event in message.steps:
            self.add_step(event, loss_chart, lr_chart)
        if message.steps:
            self.progress = message.steps[-1]
        self.memory = message.memory or self.memory
        if self.state == "starting":
            self.state = "running"
        if self.state != "stopping":
            self.show_progress()

    def add_step(self, event: StepEvent, loss_chart: SeriesChart, lr_chart: SeriesChart) -> None:
        step, loss = float(event["step"]), float(event["loss"])
        loss_chart.add("loss", step, loss)
        loss_chart.add("smoothed", step, self.smoother.add(loss))
        lr_chart.add("lr", step, float(event["lr"]))

    def on_train_event(self, message: TrainEvent) -> None:
        self.handle_event(message.event)

    def handle_event(self, event: Event) -> None:
        """A low-rate event (start, epoch, log, checkpoint, end) of the shown run."""
        if event["kind"] == "start":
            self.device = event["device"]
            resumed = event["resumed_at_step"]
            self.log_line(f"{event['train_sentences']} training sentences, {event['steps_per_epoch']} "
                          f"steps/epoch × {event['epochs']} epochs on {self.device}, precision "
                          f"{event['precision']}" + (f"; resumed at step {resumed}" if resumed else ""))
            self.state = "running" if self.state == "starting" else self.state
        elif event["kind"] == "epoch":
            self.add_epoch(event)
            self.log_line(epoch_line(event))
        elif event["kind"] == "log":
            self.log_line(escape(event["message"]))
        elif event["kind"] == "checkpoint":
            self.log_line(f"[dim]checkpoint at step {event['step']}[/dim]")
        elif event["kind"] == "end":
            self.log_line(end_line(event))

    def add_epoch(self, event: EpochEvent) -> None:
        chart = self.query_one("#chart-val", SeriesChart)
        epoch = float(event["epoch"])
        chart.add("mcc", epoch, float(event["val_mcc"]))
        chart.add("accuracy", epoch, float(event["val_accuracy"]))

    def on_train_finished(self, message: TrainFinished) -> None:
        if self.state == "idle" and message.status == "failed":
            return  # already reported by worker_state_changed
        self.state = "idle"
        colour = {"done": "green", "stopped": "yellow"}.get(message.status, "red")
        extra = {"done": "evaluate it in 3, try sentences in 4",
                 "stopped": "r resumes from the checkpoint"}.get(message.status, message.error)
        self.show_progress(f"[{colour}]run {message.run_id} {message.status}[/{colour}] — {extra}")

    # ------------------------------------------------------------ showing a run

    def show_run(self, run_id: str | None) -> None:
        """Called by the app when the user opens a run: show its config and history."""
        if self.is_training or not run_id:
            return
        from workbench.core.runs import RunLock

        run_dir = self.workbench.runs_dir / run_id
        if (run_dir / "config.json").is_file():
            self.set_config(TrainConfig.load(run_dir / "config.json"))
            self.validate_form()
        self.training_run = run_id
        self.following = None
        if RunLock.is_locked(run_dir):  # training in another process: the app follows its metrics
            self.following = run_id
            self.clear_charts()
            self.progress = None
            self.show_progress(f"run {run_id}: training in another process; following it (x stops it)…")
            return
        self.load_history(run_dir)

    def add_followed(self, run_id: str, events: list[Event]) -> None:
        """Events of the followed run, read from its metrics.jsonl: the history, then live."""
        if run_id != self.following or self.is_training:
            return
        loss_chart = self.query_one("#chart-loss", SeriesChart)
        lr_chart = self.query_one("#chart-lr", SeriesChart)
        for event in events:
            if event["kind"] == "step":
                self.add_step(event, loss_chart, lr_chart)
                self.progress = event
            else:
                self.handle_event(event)
        if self.progress and "stopping" not in self.last_status:
            self.show_progress(prefix=f"run {run_id} (background)")

    def follow_ended(self, run_id: str) -> None:
        if run_id != self.following:
            return
        from workbench.core.runs import run_info

        self.following = None
        info = run_info(self.workbench.runs_dir / run_id)
        colour = {"done": "green", "stopped": "yellow"}.get(info.status, "red")
        extra = {"done": "evaluate it in 3", "stopped": "r resumes from the checkpoint"}.get(info.status, info.error)
        self.show_progress(f"[{colour}]run {run_id} {info.status}[/{colour}] — {extra}")

    def load_history(self, run_dir: Path) -> None:
        from workbench.core.runs import read_metrics, run_info

        self.clear_charts()
        loss_chart = self.query_one("#chart-loss", SeriesChart)
        lr_chart = self.query_one("#chart-lr", SeriesChart)
        last_step: StepEvent | None = None
        for event in read_metrics(run_dir):
            if event["kind"] == "start":
                self.device = event["device"]
            elif event["kind"] == "step":
                self.add_step(event, loss_chart, lr_chart)
                last_step = event
            elif event["kind"] == "epoch":
                self.add_epoch(event)
                self.log_line(epoch_line(event))
            elif event["kind"] == "end":
                self.log_line(end_line(event))
        self.progress = last_step
        info = run_info(run_dir)
        hint = {"stopped": "r resumes", "failed": "r resumes from the last checkpoint",
                "done": "finished"}.get(info.status, "")
        self.show_progress(f"run {run_dir.name}: {info.status} · {hint}" if not last_step else None,
                           prefix=f"run {run_dir.name} ({info.status}; {hint})")

    def clear_charts(self) -> None:
        for chart in self.query(SeriesChart):
            chart.clear_series()
        self.smoother = LossSmoother()
        self.query_one("#train-log", RichLog).clear()

    # ------------------------------------------------------------ progress line

    def show_progress(self, text: str | None = None, prefix: str | None = None) -> None:
        if text is None:
            p = self.progress
            if not p:
                return
            head = prefix or f"run {self.training_run}"
            text = (f"{head} · epoch {p['epoch']}/{self.epochs_total()} · step {p['step']}/"
                    f"{p['total_steps']} · loss {p['loss']:.3f}\n"
                    f"elapsed {format_duration(p['elapsed_s'])} · ETA {format_duration(p['eta_s'])} · "
                    f"{p['sentences_per_s']:.0f} sent/s · {self.device or 'device ?'}"
                    + (f" · {self.memory}" if self.memory else ""))
        self.last_status = text
        self.query_one("#train-progress", Static).update(text)

    def epochs_total(self) -> str:
        if self.progress is None or not self.progress["steps_per_epoch"]:
            return "?"
        return str(self.progress["total_steps"] // self.progress["steps_per_epoch"])

    def log_line(self, text: str) -> None:
        self.query_one("#train-log", RichLog).write(text)


def epoch_line(event: EpochEvent) -> str:
    best = " [green]★[/green]" if event["best"] else ""
    return (f"epoch {event['epoch']}: MCC {event['val_mcc']:.3f}{best} acc "
            f"{event['val_accuracy']:.3f} loss {event['train_loss']:.3f}/{event['val_loss']:.3f}")


def end_line(event: EndEvent) -> str:
    status = event["status"]
    if status == "done" and "holdout_mcc" in event:
        return (f"[b]done[/b]: holdout MCC {event['holdout_mcc']:.3f} · "
                f"acc {event.get('holdout_accuracy', 0.0):.3f}")
    if status == "failed":
        return f"[red]failed: {escape(str(event.get('error')))}[/red]"
    return f"[b]{status}[/b] at step {event.get('step')}"
