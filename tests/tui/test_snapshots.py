"""Snapshot tests of each pane at 80x24, of the small layout at 60x20 and of NO_COLOR
(pytest-textual-snapshot).

No clock, seed or cursor dependence: a run with a fixed history, a tiny model with
fixed weights, the bundled CoLA with its seeded split, non-blinking cursors, no toasts,
a system line with fixed figures, and relative paths (the tests run in a temporary folder).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.tui import DEMO_RUN, FixedMonitor, demo_run, failed_run, wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from workbench.core.base.config import DEFAULT_MODEL
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.panes.data import DataPane
from workbench.tui.panes.evaluate import EvaluatePane
from workbench.tui.panes.predict import PredictPane
from workbench.tui.panes.train import TrainPane
from workbench.tui.widgets.attributions import ExplainPanel, PairView
from workbench.tui.widgets.charts import SeriesChart, ticker

SIZE = (80, 24)
SMALL = (60, 20)


@pytest.fixture
def demo_app(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WorkbenchApp:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    demo_run(Path("runs"), tiny_model_dir)
    app = make_app(model=DEFAULT_MODEL, runs_dir=Path("runs"), run=DEMO_RUN, notify=False)
    app.load_on_start = False  # only the Data pane needs CoLA and the tokenizer
    app.monitor = FixedMonitor()
    return app


async def settle(pilot: Pilot[None]) -> None:
    """Freeze what could differ between two runs: blinking cursors, toasts, pending redraws."""
    for box in pilot.app.query(Input):
        box.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause(0.2)
    train = next(iter(pilot.app.query(TrainPane)), None)
    if train is not None and pilot.app.active_pane == "train":  # the system line sampled (once a second)
        train.sample_system()
        await wait_until(pilot, lambda: bool(train.system), what="the system line")
    clock = ticker(pilot.app)
    for _ in range(2):  # two redraw ticks, whatever the machine's load: charts and the system line drawn
        clock.tick()
    await pilot.pause(0.2)
    pilot.app.clear_notifications()


async def show_runs(pilot: Pilot[None], rows: int = 1) -> None:
    """The Runs pane with ROWS runs listed and the opened run's history replayed into its charts."""
    await pilot.press("5")
    await wait_until(pilot, lambda: pilot.app.query_one("#runs-table", DataTable).row_count == rows)
    await wait_until(pilot, lambda: pilot.app.query_one("#runs-chart-val", SeriesChart).points("mcc") == 3)
    await pilot.app.workers.wait_for_complete()


async def show_data(pilot: Pilot[None]) -> None:
    """The Data pane once the training split's statistics and the tokenizer are loaded."""
    await pilot.press("1")
    pane = pilot.app.query_one(DataPane)
    await wait_until(pilot, lambda: "train" in pane.lengths and pane.tokenizer is not None, what="data")


def test_data_pane(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await show_data(pilot)
        await settle(pilot)

    demo_app.load_on_start = True
    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


def test_train_pane(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("2")
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


def test_train_pane_with_form(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("2", "c")  # the opened run's settings in the form (under 110 columns: instead of the log)
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


def test_evaluate_pane(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("3", "e")
        pane = pilot.app.query_one(EvaluatePane)
        await wait_until(pilot, lambda: pane.report is not None, what="the evaluation")
        await wait_until(pilot, lambda: not pilot.app.query_one("#eval-wrong", DataTable).loading)
        # the highlighted sentence's attributions and nearest training sentences (workers)
        await wait_until(pilot, lambda: len(pane.neighbors) == 5, what="the nearest sentences")
        await wait_until(pilot, lambda: pilot.app.query_one("#eval-attributions").explanation is not None)
        await pilot.app.workers.wait_for_complete()
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


def test_predict_pane(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("4", *"The book was written by John.", "enter")
        pane = pilot.app.query_one(PredictPane)
        await wait_until(pilot, lambda: len(pane.history) == 1, what="a prediction")
        await pilot.press(*" Quickly")
        await wait_until(pilot, lambda: pane.latest is not None and pane.latest.sentence.endswith("Quickly"))
        explain = pilot.app.query_one("#predict-explain")
        await wait_until(
            pilot,
            lambda: (
                explain.explanation is not None  # the attributions follow (a worker)
                and explain.explanation.sentence.endswith("Quickly")
            ),
            what="attributions",
        )
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


def test_runs_pane(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await show_runs(pilot)
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)


# ---------------------------------------------------------------- 60x20: the small layout


def test_train_pane_small(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("2")
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SMALL, run_before=run_before)


def test_runs_pane_small(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await show_runs(pilot)
        await settle(pilot)

    assert snap_compare(demo_app, terminal_size=SMALL, run_before=run_before)


def test_data_pane_small(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await show_data(pilot)
        await pilot.press("down")
        await settle(pilot)

    demo_app.load_on_start = True
    assert snap_compare(demo_app, terminal_size=SMALL, run_before=run_before)


# ---------------------------------------------------------------- NO_COLOR: states without colour


@pytest.fixture
def no_color_app(demo_app: WorkbenchApp, monkeypatch: pytest.MonkeyPatch) -> WorkbenchApp:
    monkeypatch.setenv("NO_COLOR", "1")
    failed_run(Path("runs"), "failed-run")
    app = make_app(model=DEFAULT_MODEL, runs_dir=Path("runs"), run=DEMO_RUN, notify=False)
    app.load_on_start = False
    app.monitor = FixedMonitor()
    assert app.no_color
    return app


def test_runs_pane_no_color(snap_compare, no_color_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await show_runs(pilot, rows=2)
        await pilot.press("up")  # the failed run (newest, on top) highlighted: its reason below the list
        await settle(pilot)

    assert snap_compare(no_color_app, terminal_size=SIZE, run_before=run_before)


def test_train_pane_no_color(snap_compare, no_color_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("2", "c", "tab", "tab")  # the form, a field focused: marked without colour
        await settle(pilot)

    assert snap_compare(no_color_app, terminal_size=SIZE, run_before=run_before)


def test_predict_pane_with_attributions_and_a_pair(snap_compare, demo_app: WorkbenchApp) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("4", *"The book was written by John.")
        explain = pilot.app.query_one(ExplainPanel)
        await wait_until(
            pilot,
            lambda: explain.explanation is not None and explain.explanation.sentence == "The book was written by John.",
            what="attributions",
        )
        await pilot.press("ctrl+t", "ctrl+u", *"The book was written John.")
        await wait_until(
            pilot,
            lambda: (
                explain.query_one(PairView).pair is not None
                and explain.explanation.sentence == "The book was written John."
            ),
            what="the pair",
        )
        await pilot.app.workers.wait_for_complete()
        for box in pilot.app.query(Input):
            box.cursor_blink = False
        pilot.app.clear_notifications()
        await pilot.pause(0.3)

    assert snap_compare(demo_app, terminal_size=SIZE, run_before=run_before)
