"""The command palette (ctrl+p): every action as a "pane: verb" command, and the runs to open."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand

if TYPE_CHECKING:
    from workbench.tui.app import WorkbenchApp


def workbench_commands(app: WorkbenchApp) -> Iterable[SystemCommand]:
    from workbench.core.runs.status import list_runs
    from workbench.tui.panes import PANES, TITLES
    from workbench.tui.panes.data import SPLITS, DataPane
    from workbench.tui.panes.evaluate import DATASETS, EvaluatePane
    from workbench.tui.panes.runs import RunsPane

    def call(pane: str, action: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await app.action_show_pane(pane)
            getattr(app.pane(pane), action)()

        return run

    async def evaluate(dataset: str) -> None:
        await app.action_show_pane("evaluate")
        app.query_one(EvaluatePane).action_evaluate(dataset)

    async def open_suite(path: Any) -> None:
        await app.action_show_pane("evaluate")
        app.query_one(EvaluatePane).open_suite(path)

    async def show_split(split: str) -> None:
        await app.action_show_pane("data")
        app.query_one(DataPane).set_split(split)

    async def open_run(run_id: str) -> None:
        await app.open_run(run_id)
        app.query_one(RunsPane).show_runs()

    train, runs = partial(call, "train"), partial(call, "runs")
    yield SystemCommand(
        "train: start",
        "Start a new training with the form's settings, as its own process (it goes on when the app closes)",
        train("action_start"),
    )
    yield SystemCommand("train: follow next", "Follow the next run that is training now", train("action_follow_next"))
    yield SystemCommand("train: stop", "Stop at the next batch, saving a checkpoint", train("action_stop"))
    yield SystemCommand("train: resume", "Resume the chosen run from its checkpoint", train("action_resume"))
    yield SystemCommand("train: show/hide form", "Toggle the configuration form", train("action_toggle_form"))
    yield SystemCommand("charts: log scale", "Loss on a log / linear scale (Train pane)", train("action_log_scale"))
    yield SystemCommand("charts: smoothing", "Cycle the loss smoothing (Train pane)", train("action_smoothing"))
    for dataset in DATASETS:
        yield SystemCommand(f"eval: {dataset}", f"Evaluate the chosen run on {dataset}", partial(evaluate, dataset))
    for split in SPLITS:
        yield SystemCommand(f"data: {split}", f"Show the {split} split", partial(show_split, split))
    from workbench.core.explore.pairs import suite_files

    suites = suite_files() + suite_files(app.runs_dir) + suite_files(Path.cwd())
    for path in dict.fromkeys(suites):
        yield SystemCommand(
            f"pairs: {path.name}", f"Score the minimal pairs of {path} with the opened run", partial(open_suite, path)
        )
    yield SystemCommand(
        "data: map of the training data",
        "Confidence, variability and correctness of every training sentence of the opened run (cartography)",
        call("data", "action_training_map"),
    )
    yield SystemCommand("data: search", "Search sentences", call("data", "action_search"))
    yield SystemCommand("predict: sentence box", "Type a sentence", partial(app.action_show_pane, "predict"))
    yield SystemCommand(
        "predict: clear history", "Clear the sentence history (asks first)", call("predict", "action_clear_history")
    )
    yield SystemCommand("runs: refresh", "List the runs again", runs("action_refresh_runs"))
    yield SystemCommand("runs: mark", "Mark the highlighted run for comparing", runs("action_toggle_mark"))
    yield SystemCommand(
        "runs: compare marked", "Loss and validation MCC overlaid, differing settings", runs("action_compare")
    )
    yield SystemCommand("runs: diff marked", "Where two marked runs' predictions disagree", runs("action_diff"))
    yield SystemCommand(
        "runs: groups and sweeps", "Seed groups (median, min, max) and sweep studies", runs("action_many_runs")
    )
    yield SystemCommand("runs: details", "The highlighted run in full", runs("action_details"))
    yield SystemCommand(
        "runs: stop", "Stop the highlighted run at its next batch (detached too)", runs("action_stop_run")
    )
    yield SystemCommand(
        "runs: export CSV", "Write the highlighted run's metrics to runs/<id>/metrics.csv", runs("action_export_csv")
    )
    for name in PANES:
        yield SystemCommand(f"go: {TITLES[name]}", f"Switch to the {name} pane", partial(app.action_show_pane, name))
    yield SystemCommand("help: keys", "Every key of the workbench", app.action_help)
    if app.offered_run:
        yield SystemCommand(
            f"runs: open the finished run {app.offered_run}",
            "Explore it in Predict, Evaluate and Runs (ctrl+o)",
            app.action_open_offered,
        )
    # the Runs pane keeps app.runs; before it is composed (the first seconds), the folder itself
    listed = app.runs if app.mounted(RunsPane) is not None else list_runs(app.runs_dir)
    for info in listed:
        best = f"best val MCC {info.best_val_mcc:.3f}" if info.best_val_mcc is not None else "no epoch yet"
        yield SystemCommand(f"open run {info.id}", f"{info.status}, {best}", partial(open_run, info.id))
