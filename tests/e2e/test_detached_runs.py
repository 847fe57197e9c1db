"""Runs that outlive the terminal: started detached (from the CLI and the TUI), followed, stopped,
resumed, killed; a detached launch trains exactly the config it was given."""

from __future__ import annotations

import os
import signal
import time
from itertools import pairwise
from pathlib import Path

import pytest
from helpers import warm
from helpers.tui import wait_until

from workbench.cli import main
from workbench.core.base.config import TrainConfig
from workbench.core.base.layout import PID_FILE
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import follow_run, read_metrics
from workbench.core.runs.status import launch_training, run_info
from workbench.tui.app import make_app
from workbench.tui.panes.train import TrainPane
from workbench.tui.widgets.charts import SeriesChart

SIZE = (80, 24)


def long_args(model: Path, data: Path, runs: Path, name: str, *extra: str) -> list[str]:
    """A tiny training long enough (2 epochs of 54 steps) to be seen running, stopped and killed."""
    return [
        "train",
        "--model",
        str(model),
        "--data",
        str(data),
        "--runs",
        str(runs),
        "--name",
        name,
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--train-limit",
        "216",
        "--precision",
        "fp32",
        "--learning-rate",
        "1e-3",
        *extra,
    ]


def wait_for(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def steps(run: Path) -> int:
    return sum(1 for e in read_metrics(run) if e["kind"] == "step")


def test_detached_run_is_followed_stopped_resumed(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    started = warm.run_cli(long_args(tiny_model_dir, tiny_cola_dir, runs, "bg", "--detach"), timeout=180)
    assert started.returncode == 0, started.stderr
    assert "workbench attach bg" in started.stdout
    run = runs / "bg"
    assert RunLock.is_locked(run)  # the training process holds the run, though the launcher has exited
    wait_for(lambda: steps(run) >= 3)
    assert run_info(run).status == "running"

    follower = warm.cli(["attach", "bg", "--runs", str(runs)], merged=False)
    assert main(["stop", "bg", "--runs", str(runs)]) == 0
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0 and "stopped" in out, out + err
    assert "216 sentences, 2 epochs" in err  # the history replayed through the progress display
    wait_for(lambda: not RunLock.is_locked(run))
    assert run_info(run).status == "stopped"
    assert (run / "checkpoint" / "meta.json").is_file()

    assert main(["train", "--resume", "bg", "--runs", str(runs), "--detach"]) == 0
    capsys.readouterr()
    assert main(["attach", "bg", "--runs", str(runs)]) == 0  # follows the resumed run to its end
    attached = capsys.readouterr()
    assert "done" in attached.out, attached.out + attached.err
    info = run_info(run)
    assert info.status == "done" and info.holdout_mcc is not None and info.epochs_done == 2


def test_a_killed_run_shows_as_failed(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(long_args(tiny_model_dir, tiny_cola_dir, runs, "doomed", "--detach")) == 0
    run = runs / "doomed"
    wait_for(lambda: steps(run) >= 2)
    os.kill(int((run / PID_FILE).read_text()), signal.SIGKILL)
    wait_for(lambda: not RunLock.is_locked(run))
    info = run_info(run)
    assert info.status == "failed" and "without a final event" in info.error
    capsys.readouterr()
    assert main(["runs", "--runs", str(runs)]) == 0
    assert "failed" in capsys.readouterr().out


def test_a_detached_launch_trains_exactly_the_given_config(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    """The config travels to the background process whole (no flags in between), and the run is followed to its end."""
    config = TrainConfig(
        model=str(tiny_model_dir),
        data=str(tiny_cola_dir),
        epochs=1,
        learning_rate=3e-4,
        precision="fp32",
        train_limit=32,
        batch_size=16,
        warmup_ratio=0.25,
        extra={"note": "kept"},
    )
    run = tmp_path / "runs" / "mine"
    launch_training(config, run)
    events = [event for batch in follow_run(run) for event in batch]
    assert events[-1]["kind"] == "end" and events[-1]["status"] == "done", events[-1]
    assert TrainConfig.load(run / "config.json") == config
    assert not (run / ".launch.json").exists()


async def test_a_new_app_follows_the_running_training_at_once_and_stops_it(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    """A training started by an app that went away (or by the CLI): a new app opens on the Train pane,
    follows it with its history so far, says so, and x stops it with a checkpoint."""
    runs = tmp_path / "runs"
    trainer = warm.cli(long_args(tiny_model_dir, tiny_cola_dir, runs, "left", "--epochs", "1000"))
    run = runs / "left"
    try:
        wait_for(lambda: steps(run) >= 20)
        app = make_app(model=str(tiny_model_dir), data=str(tiny_cola_dir), runs_dir=runs)
        app.load_on_start = False
        async with app.run_test(size=SIZE) as pilot:
            pane = app.query_one(TrainPane)
            assert app.active_pane == "train"
            await wait_until(
                pilot,
                lambda: pane.live_run == "left" and pane.progress is not None,
                what="the Train pane to follow the run",
            )
            loss = app.query_one("#chart-loss", SeriesChart)
            # the history first: every step written before the app started is charted
            await wait_until(pilot, lambda: loss.points("loss") >= 20, what="the history")
            assert any("run left is training" in n.message for n in app._notifications)  # type: ignore[attr-defined]
            before = loss.points("loss")
            await wait_until(pilot, lambda: loss.points("loss") > before, what="live steps")
            await pilot.press("x")
            await wait_until(
                pilot, lambda: not pane.is_training and "stopped" in pane.last_status, timeout=60, what="the stop"
            )
            assert "ETA" not in pane.last_status
        assert trainer.wait(60) != 0  # stopped: the CLI's interrupted status
        assert run_info(run).status == "stopped" and (run / "checkpoint" / "meta.json").is_file()
    finally:
        if trainer.poll() is None:
            trainer.kill()


def test_a_training_killed_mid_epoch_resumes_from_its_timed_checkpoint(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    """checkpoint_minutes: a checkpoint by the clock inside an epoch, so a SIGKILL (a preempted machine)
    loses at most the interval (plus the step under way); the resume starts there, and its elapsed time
    counts on from the killed session's."""
    interval = 0.001 * 60  # s: a few of the tiny model's steps, so timed checkpoints land early in an epoch too
    runs = tmp_path / "runs"
    timing = ("--epochs", "30", "--batch-size", "2", "--checkpoint-minutes", "0.001")  # 108 steps an epoch
    trainer = warm.cli(long_args(tiny_model_dir, tiny_cola_dir, runs, "preempted", *timing))
    run = runs / "preempted"

    def killable() -> bool:
        """2 checkpoints by the clock, the newest in the first half of its epoch: the kill lands before that
        epoch's own checkpoint at its end (under CI's load it once landed just after one)."""
        events = read_metrics(run)
        checkpoints = [e for e in events if e["kind"] == "checkpoint"]
        steps = next((e["steps_per_epoch"] for e in events if e["kind"] == "step"), 0)
        by_clock = [e for e in checkpoints if e["epoch_step"]]
        return len(by_clock) >= 2 and 0 < checkpoints[-1]["epoch_step"] <= steps // 2

    wait_for(killable)
    trainer.kill()
    trainer.wait(30)
    events = read_metrics(run)
    step_events = [e for e in events if e["kind"] == "step"]
    last_checkpoint = [e for e in events if e["kind"] == "checkpoint"][-1]
    # the steps since the last checkpoint are what the kill lost: at most an interval's worth (+ one step)
    at_checkpoint = next(e for e in step_events if e["step"] == last_checkpoint["step"])
    longest_step = max(b["elapsed_s"] - a["elapsed_s"] for a, b in pairwise(step_events))
    lost = step_events[-1]["elapsed_s"] - at_checkpoint["elapsed_s"]
    assert lost <= interval + 2 * longest_step, (lost, interval, longest_step)

    resumed = warm.cli(["train", "--resume", "preempted", "--runs", str(runs)])
    try:
        wait_for(lambda: len([e for e in read_metrics(run) if e["kind"] == "step"]) > len(step_events))
    finally:
        resumed.kill()
        resumed.wait(30)
    after = read_metrics(run)[len(events) :]
    start = next(e for e in after if e["kind"] == "start")
    assert start["resumed_at_step"] == last_checkpoint["step"] and last_checkpoint["epoch_step"] > 0
    first_step = next(e for e in after if e["kind"] == "step")
    assert first_step["step"] == last_checkpoint["step"] + 1
    # elapsed goes on from the killed session's training time at its checkpoint, not from 0
    assert first_step["elapsed_s"] >= at_checkpoint["elapsed_s"]
