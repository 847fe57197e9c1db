"""Runs that outlive the terminal, from the TUI: start detached, follow, stop, compare, export."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from helpers.tui import DEMO_RUN, demo_run, wait_until
from textual.widgets import DataTable

from workbench.core.runs.lock import RunLock
from workbench.core.runs.status import run_info
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.messages import RunsRefreshed
from workbench.tui.panes.runs import RunsPane
from workbench.tui.panes.train import TrainPane
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.widgets.charts import SeriesChart

SIZE = (80, 24)


def second_run(runs_dir: Path, name: str = "other-run") -> Path:
    """A copy of the demo run with two settings changed and a different history."""
    run = runs_dir / name
    shutil.copytree(runs_dir / DEMO_RUN, run, ignore=shutil.ignore_patterns("model"))
    config = json.loads((run / "config.json").read_text())
    config.update(learning_rate=5e-5, seed=7)
    (run / "config.json").write_text(json.dumps(config))
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for event in events:
        if event["kind"] == "step":
            event["loss"] *= 1.1
        elif event["kind"] == "epoch":
            event["val_mcc"] /= 2
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run


async def test_following_a_finished_run_replays_its_charts(tiny_model_dir: Path, tmp_path: Path) -> None:
    demo_run(tmp_path / "runs", tiny_model_dir)
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        table = app.query_one("#runs-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the runs")
        await pilot.press("enter")
        loss = app.query_one("#runs-chart-loss", SeriesChart)
        validation = app.query_one("#runs-chart-val", SeriesChart)
        await wait_until(pilot, lambda: validation.points("mcc") == 3, what="the replayed history")
        assert loss.points("loss") == len(loss.drawn("loss")) == 30
        await app.workers.wait_for_complete()  # a finished run: following ends by itself
        assert app.followed_run == DEMO_RUN and "done" in str(table.get_row_at(0)[2])


async def test_following_a_live_run_moves_and_lets_go_of_the_previous_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    live = second_run(runs, "live-run")
    events = (live / "metrics.jsonl").read_text().splitlines(keepends=True)
    (live / "metrics.jsonl").write_text("".join(events[:11]))  # start + 10 steps, no end yet
    app = make_app(runs_dir=runs)
    app.load_on_start = False
    with RunLock(live):  # as a training in another process would hold it
        async with app.run_test(size=SIZE) as pilot:
            await app.open_run("live-run")
            loss = app.query_one("#chart-loss", SeriesChart)
            runs_loss = app.query_one("#runs-chart-loss", SeriesChart)
            assert app.query_one(TrainPane).live_run == "live-run"
            await wait_until(pilot, lambda: loss.points("loss") == 10 and runs_loss.points("loss") == 10)
            with (live / "metrics.jsonl").open("a") as handle:
                handle.writelines(events[11:20])
            await wait_until(pilot, lambda: loss.points("loss") == 18, what="live points")
            await app.open_run(DEMO_RUN)  # another run chosen: the follow worker of live-run ends
            await wait_until(pilot, lambda: runs_loss.points("loss") == 30, what="the other run")
            await pilot.pause(0.5)
            assert not [w for w in app.workers if w.group == "follow" and w.is_running]
            assert runs_loss.points("loss") == 30


def two_runs_app(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, WorkbenchApp]:
    """A runs folder with the demo run and second_run's copy of it, and an app on it that loads nothing."""
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    second_run(runs)
    app = make_app(runs_dir=runs)
    app.load_on_start = False
    return runs, app


async def test_compare_two_marked_runs(tiny_model_dir: Path, tmp_path: Path) -> None:
    _, app = two_runs_app(tiny_model_dir, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count == 2, what="the runs")
        await pilot.press("c")  # nothing marked yet: refused with a hint
        assert not isinstance(app.screen, CompareScreen)
        await pilot.press("space", "down", "space", "c")  # space marks; the cursor stays
        assert isinstance(app.screen, CompareScreen)
        screen = app.screen
        loss = screen.query_one("#compare-loss", SeriesChart)
        mcc = screen.query_one("#compare-mcc", SeriesChart)
        # one series (and legend entry) per run, in the list's order: newest first (same start: by name)
        assert list(loss.series) == list(mcc.series) == ["other-run", DEMO_RUN]
        assert all(loss.points(run) == 30 for run in loss.series)
        assert all(mcc.points(run) == 3 for run in mcc.series)
        assert screen.differing == ["learning_rate", "seed"]
        table = screen.query_one("#compare-config", DataTable)
        settings = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert settings[:2] == ["learning_rate", "seed"]
        assert not set(settings) & {"epochs", "batch_size", "model"}
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)


async def test_export_writes_the_metrics_as_csv(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    app = make_app(runs_dir=runs)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count == 1, what="the runs")
        await pilot.press("e")
        path = runs / DEMO_RUN / "metrics.csv"
        rows = list(csv.DictReader(path.open()))
        assert len(rows) == 30 + 3 and {"step", "loss", "val_mcc"} <= set(rows[0])
        notes = [str(n.message) for n in app._notifications]  # type: ignore[attr-defined]
        assert any(str(path) in note for note in notes), notes
    assert run_info(runs / DEMO_RUN).status == "done"


async def test_palette_has_the_runs_commands(tmp_path: Path) -> None:
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE):
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("train: follow next", "runs: compare marked", "runs: stop", "runs: export CSV"):
            assert title in titles


async def test_a_refresh_landing_right_after_an_arrow_key_keeps_the_users_row(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The cursor moves at once, its highlight event a turn later; a runs list refreshed in between used to
    put the cursor back on the row the pane last heard of (seen in CI as a flaky Runs snapshot)."""
    _, app = two_runs_app(tiny_model_dir, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.open_run(DEMO_RUN)
        await pilot.press("5")
        pane = app.query_one(RunsPane)
        table = app.query_one("#runs-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 2, what="the runs")
        await app.workers.wait_for_complete()
        await pilot.pause()
        start = table.cursor_row
        assert pane.runs[start].id == DEMO_RUN
        other = 1 - start
        table.move_cursor(row=other)  # as the arrow key does; RowHighlighted is only posted
        pane.on_runs_refreshed(RunsRefreshed(list(pane.runs)))  # the refresh handled first
        await pilot.pause()
        assert table.cursor_row == other and pane.highlighted().id == "other-run"
        assert "other-run" in str(app.query_one("#runs-detail").render())
