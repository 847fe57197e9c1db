"""2 Train: the config form (validated as typed), start/stop/resume, live charts, progress, log,
early-stopping state and a system line (CPU, RAM, GPU).

Every training runs as its own process (core `launch_training`, as `workbench train --detach`): the
pane starts it and follows its events from the run folder, so a hang-up, a closed terminal or a
crashed app never stops it, and a new app finds it again."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import AwaitMount
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from workbench.core.base.config import TrainConfig, format_setting, parse_field
from workbench.core.base.events import COMPILE_ENDS, COMPILING, Event, StepEvent
from workbench.core.base.layout import CONFIG_FILE, is_run_folder, new_run_id, run_path
from workbench.tui.messages import (
    StatusChanged,
    SystemSampled,
    TrainFinished,
    TrainFollowEnded,
    TrainLaunched,
    TrainProgress,
)
from workbench.tui.panes.base import Pane
from workbench.tui.panes.train_form import FORM_FIELDS, default_form_text, form_rows, problems_text
from workbench.tui.panes.train_text import end_line, epoch_line, format_duration, patience_text
from workbench.tui.style import status_text, toned
from workbench.tui.widgets.charts import REDRAW_HZ, ticker
from workbench.tui.widgets.log import TextLog
from workbench.tui.widgets.run_charts import RunCharts

END_HINTS = {
    "done": "evaluate it in 3, try sentences in 4",
    "stopped": "r resumes from the checkpoint",
    "failed": "r resumes from the last checkpoint",
}


def training_headline(run_id: str) -> str:
    return f"run {run_id}: training · x stops it (checkpoint)"


class TrainPane(Pane):
    """Configure, start, watch, stop and resume one training at a time."""

    BINDINGS = [
        Binding(
            "s",
            "start",
            "Start",
            tooltip="start a training with the form's settings (enter in a field too), "
            "as its own process: it goes on when the app closes",
        ),
        Binding("x", "stop", "Stop", tooltip="stop the followed training at its next batch, saving a checkpoint"),
        Binding("r", "resume", "Resume", tooltip="resume the shown run from its newest checkpoint"),
        Binding("f", "follow_next", "Follow", show=False, tooltip="follow the next run that is training now"),
        Binding("c", "toggle_form", "Form", tooltip="show / hide the settings form (tab enters it)"),
        Binding("l", "log_scale", "Log", show=False, tooltip="loss chart on a log / linear scale"),
        Binding(
            "m", "smoothing", "Smooth", show=False, tooltip="cycle the loss smoothing (off, 0.6, 0.8, 0.9, 0.95, 0.99)"
        ),
    ]
    HELP = (
        "The header: epoch, step, ETA; loss, speed, early-stopping patience left; device, CPU, RAM and GPU.\n"
        "Charts: loss (• raw, ⣿ smoothed), validation MCC (⣿) and accuracy (•) with ★ at the best epoch, "
        "learning rate, gradient norm (under 70 columns: loss and validation only)."
    )

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)  # (compose sets "-form" when the form shows from the start)
        # The form's settings as text, the fields' own until they exist: the form's 34 rows are composed
        # the first time it is shown (an opened run shows its charts; most sessions never open the form).
        self.form_text = default_form_text()
        self.verdict = ""  # the form's verdict line(s) as last drawn
        self.live_run: str | None = None  # the run whose training process the pane follows (or is starting)
        self.shown_run: str | None = None  # the run the charts show (the live one, or one opened)
        self.problems: dict[str, str] = {}
        self.progress: StepEvent | None = None
        self.device = ""
        self.system = ""
        self.patience = 0
        self.state = "idle"  # idle, starting, running, finishing (after the last step), stopping
        self.events_seen = 0  # events of the live run charted so far (a resume follows on from here)
        self.progress_stale = False  # steps arrived since the header was drawn
        self.headline: Text = Text("no training yet: check the form, then press s (or enter in a field)")
        self.last_status = ""

    @property
    def is_training(self) -> bool:
        """A training is starting or running, followed by this pane."""
        return self.live_run is not None and self.state != "idle"

    def compose(self) -> ComposeResult:
        header = Static("", id="train-progress")
        header.can_focus = True  # the pane's keys live here: focusing the pane would restyle all its widgets
        yield header
        # An opened run or a training followed at start shows its charts: the form then waits for c. The
        # class is set before the first styling (set in on_mount it restyled the whole pane again).
        shown = self.session.current_run is None and not self.workbench.running_at_start
        self.set_class(shown, "-form")
        with Horizontal(id="train-body"):
            form = Vertical(id="train-form")
            form.display = shown
            with form:
                yield Static("", id="form-problems")
                fields_box = VerticalScroll(id="form-fields")
                fields_box.can_focus = False  # tab goes straight to the fields
                with fields_box:
                    if shown:
                        yield from form_rows(self.form_text, self.problems)
            with Horizontal(id="train-main"):
                yield RunCharts(prefix="chart", id="train-charts")
                yield TextLog(id="train-log")

    def form_inputs(self) -> dict[str, Input]:
        """The form's fields by setting, empty until the form is first shown."""
        fields = self.query(".form-input").results(Input)
        return {field.id.removeprefix("field-"): field for field in fields if field.id}

    @property
    def charts(self) -> RunCharts:
        return self.query_one("#train-charts", RunCharts)

    def on_mount(self) -> None:
        self.set_config(self.session.initial_config())
        self.validate_form()
        self.show_progress()
        clock = ticker(self.app)  # the charts' clock: the header and the charts change in one screen update
        clock.add(self.redraw_progress)
        clock.add(self.sample_system, every=round(REDRAW_HZ))  # once a second

    def on_unmount(self) -> None:
        clock = ticker(self.app)
        clock.remove(self.redraw_progress)
        clock.remove(self.sample_system)

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
        self.progress_stale = True  # shown in the next tick, with the charts

    # ------------------------------------------------------------ the form

    def set_config(self, config: TrainConfig) -> None:
        values = config.to_dict()
        fields = self.form_inputs()
        for name in FORM_FIELDS:
            self.form_text[name] = format_setting(values[name])
            if name in fields:
                fields[name].value = self.form_text[name]
                fields[name].cursor_position = 0  # show the start of long values (model paths)
        self.patience = config.patience

    def read_form(self) -> tuple[TrainConfig | None, dict[str, str]]:
        """The config the form describes, or the problems by field."""
        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        fields = self.form_inputs()
        for name in FORM_FIELDS:
            text = fields[name].value if name in fields else self.form_text[name]
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
        for name, field in self.form_inputs().items():
            field.set_class(name in self.problems, "-invalid")
        verdict = problems_text(self.problems, config)
        if verdict.plain != self.verdict:  # (most keys leave it as it was: no redraw, no layout of the screen)
            self.verdict = verdict.plain
            self.query_one("#form-problems", Static).update(verdict)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        for row in self.query(".form-row"):  # its label marked (reverse): the focus shows without colour
            row.set_class(row is event.widget.parent, "-focused")

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        if isinstance(event.widget, Input) and event.widget.parent is not None:
            event.widget.parent.set_class(False, "-focused")

    @on(Input.Changed, ".form-input")
    def _field_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        if self.form_text.get(name) == event.value:
            return  # a value the pane set itself (a field's first value, a run's settings): validated already
        self.form_text[name] = event.value
        self.validate_form()

    @on(Input.Submitted, ".form-input")
    def _field_submitted(self) -> None:
        self.action_start()

    async def action_toggle_form(self) -> None:
        # awaited: the form's rows are mounted when the action ends (a key handled after it finds them)
        await self.show_form(not self.query_one("#train-form").display)
        self.focus_default()  # the pane keeps the keys; tab enters the form

    def show_form(self, shown: bool) -> AwaitMount | AwaitComplete:
        """The form beside the charts; under 110 columns the log gives way to it. The first time it is
        shown its rows are composed: awaiting the result waits for them."""
        self.query_one("#train-form").display = shown
        self.set_class(shown, "-form")
        if shown and not self.form_inputs():
            return self.query_one("#form-fields").mount_all(form_rows(self.form_text, self.problems))
        return AwaitComplete.nothing()

    def use_overrides(self, path: str) -> None:
        """The review's label-overrides file into the form's overrides setting, the form shown: s starts."""
        if "overrides" not in FORM_FIELDS:
            self.notify("this Train form has no overrides setting", severity="error")
            return
        self.form_text["overrides"] = path
        fields = self.form_inputs()
        if "overrides" in fields:
            fields["overrides"].value = path
            fields["overrides"].cursor_position = 0
        self.show_form(True)  # composed now, its rows hold the path
        self.validate_form()
        self.focus_default()
        self.notify(f"the form trains with the decisions in {path}: s starts", timeout=8)

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

    def refuse_while_training(self) -> bool:
        if self.is_training:
            self.notify(f"run {self.live_run} is training: x stops it first", severity="warning")
            return True
        return False

    def action_start(self) -> None:
        """Start the form's config as its own process (as `workbench train --detach`): it outlives
        the app, a hang-up and a closed terminal; the pane follows it."""
        if self.refuse_while_training():
            return
        config = self.form_config()
        if config is None:
            return
        runs_dir = self.session.runs_dir
        run_dir = run_path(runs_dir, new_run_id(runs_dir))
        run_dir.mkdir(parents=True, exist_ok=True)  # claims the id at once: a second start gets another
        self.launch(config, run_dir)

    def action_resume(self) -> None:
        if self.refuse_while_training():
            return
        run_id = self.shown_run or self.session.current_run
        if not run_id:
            self.notify("no run to resume: choose one in Runs (5)", severity="warning")
            return
        run_dir = run_path(self.session.runs_dir, run_id)
        if not is_run_folder(run_dir):
            self.notify(f"{run_id}: not a run folder", severity="error")
            return
        self.launch(None, run_dir)

    def launch(self, config: TrainConfig | None, run_dir: Path) -> None:
        """Start CONFIG into RUN_DIR (None: resume it) through core `launch_training`, in a worker:
        the process takes a few seconds to import its libraries and hold the run."""
        resume = config is None
        self.live_run = self.shown_run = run_dir.name
        self.state = "starting"
        if config is not None:
            self.patience = config.patience
        self.progress = None
        if not resume:
            self.clear_charts()
        verb = "resuming" if resume else "starting"
        self.log_line(Text.assemble((verb, "bold"), f" run {run_dir.name} in its own process…"))
        self.set_headline(f"run {run_dir.name}: {verb} (loading the libraries and the model)…")
        self.show_form(False)
        self.focus_default()
        self.post_message(StatusChanged(f"{verb} run {run_dir.name}"))
        self.launch_worker(config, run_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="launch", name="start the training")
    def launch_worker(self, config: TrainConfig | None, run_dir: Path) -> None:
        if config is not None:
            check_start(config, run_dir)
        pid = self.session.launch_training(config, run_dir)
        self.post_message(TrainLaunched(run_dir.name, pid, resumed=config is None))

    def on_train_launched(self, message: TrainLaunched) -> None:
        if message.run_id != self.live_run:
            return
        self.notify(
            f"run {message.run_id} training in its own process (pid {message.pid}): it goes on if the app "
            "closes or the connection drops. x stops it",
            timeout=6,
        )
        self.follow(message.run_id, clear=not message.resumed)

    def worker_state_changed(self, worker: Worker, state: WorkerState) -> None:
        if worker.group != "launch" or state not in (WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if self.state != "starting":
            return
        self.state = "idle"
        error = str(worker.error) if worker.error else "cancelled"
        self.log_line(toned(f"the training did not start: {error}", "bad"))
        self.set_headline(f"run {self.live_run} did not start: {error} — fix and press s or r", "bad")
        self.live_run = None

    def action_stop(self) -> None:
        """Ask the followed training (its own process) to stop at its next batch: core `stop_run`;
        it saves a checkpoint first."""
        from workbench.core.base.layout import RunError
        from workbench.core.runs.status import stop_run

        if self.live_run is None or self.state not in ("running", "finishing", "stopping"):
            self.notify(
                "no training is running" + (": it is still starting" if self.state == "starting" else ""),
                severity="warning",
            )
            return
        try:
            stop_run(run_path(self.session.runs_dir, self.live_run))
        except RunError as err:
            self.notify(str(err), severity="error")
            return
        self.state = "stopping"
        self.set_headline(f"run {self.live_run}: stopping at the next batch (checkpoint)…", "warn")

    def action_follow_next(self) -> None:
        """Follow the next of the runs training now (several: each in turn)."""
        from workbench.core.runs.status import running_runs

        running = running_runs(self.session.runs_dir)
        if not running or running == [self.live_run]:
            self.notify("no other run is training", timeout=3)
            return
        index = running.index(self.live_run) + 1 if self.live_run in running else 0
        run_id = running[index % len(running)]
        self.follow(run_id)
        self.notify(f"following run {run_id} ({len(running)} training)", timeout=3)

    # ------------------------------------------------------------ following the training process

    def follow(self, run_id: str, clear: bool = True) -> None:
        """Follow RUN_ID's training process: its history, then its events as they come, until it ends."""
        self.live_run = self.shown_run = run_id
        self.state = "running"
        if clear:
            self.clear_charts()
            self.progress = None
        self.set_headline(training_headline(run_id))
        self.show_form(False)
        self.follow_worker(run_id, skip=0 if clear else self.events_seen)
        if clear:
            self.events_seen = 0

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-follow", name="follow the training")
    def follow_worker(self, run_id: str, skip: int = 0) -> None:
        """Drive core `follow_run` (the same as `workbench attach`); ends with the run's process, or when
        cancelled (another run followed: `exclusive`; the app closing)."""
        from workbench.core.runs.metrics import follow_run

        worker = get_current_worker()
        folder = run_path(self.session.runs_dir, run_id)
        # a read per redraw: the steps reach the charts within a tick, and the app wakes no more than it draws
        for batch in follow_run(folder, cancelled=lambda: worker.is_cancelled, poll=1 / REDRAW_HZ):
            if worker.is_cancelled:
                return
            if skip:  # a resume: the history is charted already
                batch, skip = batch[skip:], max(0, skip - len(batch))
            if batch:
                self.post_message(TrainProgress(run_id, batch))
        self.post_message(TrainFollowEnded(run_id, cancelled=worker.is_cancelled))

    def on_train_progress(self, message: TrainProgress) -> None:
        if message.run_id != self.live_run:
            return  # a run let go, still queued
        self.events_seen += len(message.events)
        self.charts.add_events(message.events)
        for event in message.events:
            if event["kind"] == "step":
                self.progress = event
                if self.state == "finishing":
                    self.state = "running"
            else:
                self.handle_event(event)
        if any(event["kind"] != "step" for event in message.events):
            self.show_progress()  # an epoch, a stage, the end: at once
        else:
            self.progress_stale = True  # steps: with the next redraw (redraw_progress), as the charts do

    def redraw_progress(self) -> None:
        """The header at most REDRAW_HZ times a second while steps come (as the charts): every redraw of the
        app costs the training beside it on a 2-core machine."""
        if self.progress_stale:
            self.show_progress()

    def on_train_follow_ended(self, message: TrainFollowEnded) -> None:
        if message.cancelled or message.run_id != self.live_run:
            return
        from workbench.core.runs.status import run_info

        info = run_info(run_path(self.session.runs_dir, message.run_id))
        was_training = self.state in ("running", "stopping", "finishing")
        self.state = "idle"
        self.live_run = None
        self.show_end(message.run_id, info.status, info.error)
        if was_training:
            self.post_message(TrainFinished(message.run_id, info.status, info.error))

    def handle_event(self, event: Event) -> None:
        """A low-rate event (start, epoch, log, checkpoint, stage, end) of the shown run, for the log."""
        if event["kind"] == "start":
            self.device = event["device"]
            resumed = event["resumed_at_step"]
            self.log_line(
                f"{event['train_sentences']} training sentences, {event['steps_per_epoch']} "
                f"steps/epoch × {event['epochs']} epochs on {self.device}, precision "
                f"{event['precision']}" + (f"; resumed at step {resumed}" if resumed else "")
            )
            if self.live_run and self.state in ("running", "finishing"):
                self.state = "running"
                self.set_headline(training_headline(self.live_run))
        elif event["kind"] == "epoch":
            self.log_line(epoch_line(event))
        elif event["kind"] == "log":
            self.log_line(event["message"])
            if self.live_run and self.state == "running":  # a compile's wait (--compile) is said where one looks
                if event["message"].startswith(COMPILING):
                    self.set_headline(
                        f"run {self.live_run}: compiling the model (torch.compile) before the first step · "
                        "x stops it after"
                    )
                elif event["message"].startswith(COMPILE_ENDS):
                    self.set_headline(training_headline(self.live_run))
        elif event["kind"] == "checkpoint":
            self.log_line(toned(f"checkpoint at step {event['step']}", "muted"))
        elif event["kind"] == "stage":
            count = f" ({event['sentences']:,} sentences)" if event["sentences"] else ""
            self.log_line(toned(f"finishing {event['index']}/{event['stages']}: {event['stage']}{count}", "muted"))
            if self.live_run and self.state in ("running", "finishing"):
                self.state = "finishing"
                self.set_headline(
                    f"run {self.live_run}: trained; finishing {event['index']}/{event['stages']}: "
                    f"{event['stage']}{count}…"
                )
        elif event["kind"] == "end":
            self.log_line(end_line(event))

    def show_end(self, run_id: str, status: str, error: str = "") -> None:
        headline = Text(f"run {run_id} ")
        headline.append_text(status_text(status))
        headline.append(f" — {error if status == 'failed' and error else END_HINTS.get(status, '')}")
        self.headline = headline
        self.show_progress()

    # ------------------------------------------------------------ showing a run

    def show_run(self, run_id: str | None) -> None:
        """Called by the app when the user opens a run: show its config and history, or follow it when
        it trains now. A training followed meanwhile is kept (its run stays in view until it ends)."""
        if self.is_training or not run_id:
            return
        from workbench.core.runs.lock import RunLock

        run_dir = run_path(self.session.runs_dir, run_id)
        if is_run_folder(run_dir):
            self.set_config(TrainConfig.load(run_dir / CONFIG_FILE).as_requested())
            self.validate_form()
        self.shown_run = run_id
        self.show_form(False)  # the run's charts; c shows its settings
        if run_dir.is_dir() and RunLock.is_locked(run_dir):  # training now: followed
            self.follow(run_id)
            return
        self.load_history(run_dir)

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
        self.events_seen = len(events)
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
        self.progress_stale = False
        lines = [self.headline, Text(self.progress_line()), Text(self.machine_line())]
        text = Text("\n").join(lines)
        self.last_status = text.plain
        self.query_one("#train-progress", Static).update(text, layout=False)  # 3 lines, always: no reflow

    def progress_line(self) -> str:
        p = self.progress
        if not p:
            return "epoch — · step — · ETA —"
        eta = f"ETA {format_duration(p['eta_s'])}" if self.state in ("running", "stopping") else ""
        parts = [
            f"epoch {p['epoch']}/{self.epochs_total()}",
            f"step {p['step']}/{p['total_steps']}",
            eta,
            f"loss {p['loss']:.3f}",
            patience_text(self.patience, self.charts.series.epochs_since_best),
            f"{p['sentences_per_s']:.0f} sent/s",
            f"{format_duration(p['elapsed_s'])} elapsed",
        ]
        return " · ".join(part for part in parts if part)

    def machine_line(self) -> str:
        return " · ".join(part for part in (self.device, self.system) if part)

    def epochs_total(self) -> str:
        if self.progress is None or not self.progress["steps_per_epoch"]:
            return "?"
        return str(self.progress["total_steps"] // self.progress["steps_per_epoch"])

    def log_line(self, text: Text | str) -> None:
        self.query_one("#train-log", TextLog).write(text)


def check_start(config: TrainConfig, run_dir: Path) -> None:
    """CONFIG's data, overrides file and map regions checked as the training will (core `check_data`), before a
    process starts: a bad file's error names it and its line at once, and the run id claimed for the start is
    given back (its folder is empty)."""
    from workbench.core.training.prepare import check_data

    try:
        check_data(config, runs_dir=run_dir.parent)
    except Exception:
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        raise
