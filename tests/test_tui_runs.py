"""Runs that outlive the terminal, from the TUI: start detached, follow, stop, compare, export."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from pathlib import Path

from textual.widgets import DataTable, Input
from tui_helpers import DEMO_RUN, demo_run, small_cola_file, wait_until

from workbench.core.base.config import TrainConfig
from workbench.core.base.layout import PID_FILE
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import follow_run
from workbench.core.runs.status import launch_training, list_runs, run_info
from workbench.tui.app import make_app
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


def test_a_detached_launch_trains_exactly_the_given_config(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The config travels to the background process whole (no flags in between), and the run is followed to its end."""
    config = TrainConfig(model=str(tiny_model_dir), data=str(small_cola_file(tmp_path)), epochs=1,
                         learning_rate=3e-4, precision="fp32", train_limit=32, batch_size=16, warmup_ratio=0.25,
                         extra={"note": "kept"})
    run = tmp_path / "runs" / "mine"
    launch_training(config, run)
    events = [event for batch in follow_run(run) for event in batch]
    assert events[-1]["kind"] == "end" and events[-1]["status"] == "done", events[-1]
    assert TrainConfig.load(run / "config.json") == config
    assert not (run / ".launch.json").exists()


async def test_start_detached_then_stop_it_from_the_runs_pane(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    app = make_app(model=str(tiny_model_dir), data=str(small_cola_file(tmp_path)), runs_dir=runs)
    app.load_on_start = False
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            for name, value in [("epochs", "50"), ("precision", "fp32"), ("batch_size", "16")]:
                app.query_one(f"#field-{name}", Input).value = value
            await pilot.press("escape", "D")  # leave the form; start in the background
            pane = app.query_one(TrainPane)
            await wait_until(pilot, lambda: pane.following is not None, timeout=120, what="the detached start")
            run_id = pane.following
            assert not pane.is_training  # another process trains, not this app
            assert RunLock.is_locked(runs / run_id)
            loss = app.query_one("#chart-loss", SeriesChart)
            await wait_until(pilot, lambda: loss.points("loss") >= 2, timeout=120, what="followed loss points")
            await pilot.press("5")
            runs_pane = app.query_one(RunsPane)
            await wait_until(pilot, lambda: [r.status for r in runs_pane.runs] == ["running"], what="running")
            assert app.current_run is None  # started, not opened: the Runs charts stay on the opened run
            await pilot.press("enter")  # the user opens it
            runs_chart = app.query_one("#runs-chart-loss", SeriesChart)
            await wait_until(pilot, lambda: runs_chart.points("loss") >= 2, what="the Runs charts")
            await pilot.press("x")  # core stop_run: a stop request the detached process honours
            await wait_until(pilot, lambda: [r.status for r in runs_pane.runs] == ["stopped"], timeout=120,
                             what="the stopped status")
            table = app.query_one("#runs-table", DataTable)
            assert "stopped" in str(table.get_row_at(0)[2])
            await wait_until(pilot, lambda: pane.following is None and "stopped" in pane.last_status,
                             what="the Train pane to see the end")
        (run,) = list_runs(runs)
        assert run.status == "stopped"
        assert (run.path / "checkpoint" / "meta.json").is_file()
        assert "stopped" in (run.path / "train.log").read_text()
    finally:  # never leave a training process behind
        for pid_file in runs.glob(f"*/{PID_FILE}"):
            if not RunLock.is_locked(pid_file.parent):
                continue  # ended: the pid may be another process's by now
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (OSError, ValueError):
                pass


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


async def test_following_a_live_run_moves_and_lets_go_of_the_previous_one(tiny_model_dir: Path,
                                                                           tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    live = second_run(runs, "live-run")
    events = (live / "metrics.jsonl").read_text().splitlines(keepends=True)
    (live / "metrics.jsonl").write_text("".join(events[:11]))  # start + 10 steps, no end yet
    app = make_app(runs_dir=runs)
    app.load_on_start = False
    with RunLock(live):  # as a training in another process would hold it
        async with app.run_test(size=SIZE) as pilot:
            app.open_run("live-run")
            loss = app.query_one("#chart-loss", SeriesChart)
            runs_loss = app.query_one("#runs-chart-loss", SeriesChart)
            assert app.query_one(TrainPane).following == "live-run"
            await wait_until(pilot, lambda: loss.points("loss") == 10 and runs_loss.points("loss") == 10)
            with (live / "metrics.jsonl").open("a") as handle:
                handle.writelines(events[11:20])
            await wait_until(pilot, lambda: loss.points("loss") == 18, what="live points")
            app.open_run(DEMO_RUN)  # another run chosen: the follow worker of live-run ends
            await wait_until(pilot, lambda: runs_loss.points("loss") == 30, what="the other run")
            await pilot.pause(0.5)
            assert not [w for w in app.workers if w.group == "follow" and w.is_running]
            assert runs_loss.points("loss") == 30


async def test_compare_two_marked_runs(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    second_run(runs)
    app = make_app(runs_dir=runs)
    app.load_on_start = False
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
        for title in ("train: start detached", "runs: compare marked", "runs: stop", "runs: export CSV"):
            assert title in titles
