"""A hang-up (what a dropped SSH connection sends) closes the app, never the training it started: the
real `workbench` in a pseudo-terminal, a real SIGHUP, a cold training process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from helpers.terminal import Terminal

from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import follow_run, read_metrics
from workbench.core.runs.status import run_info

STEPS = 6 * 54  # 6 epochs of the tiny CoLA's 216 training sentences at batch 4


def test_a_hang_up_closes_the_app_and_the_training_finishes(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    terminal = Terminal(
        ["--model", str(tiny_model_dir), "--data", str(tiny_cola_dir), "--runs", str(runs)], {"WORKBENCH_NOTIFY": "0"}
    )
    try:
        assert terminal.read_until(b"ready", 120)
        # Train; the form: tab to epochs (model, data, epochs), 6; batch_size 4: 324 steps, long enough to be
        # hung up on mid-run
        for key in [b"2", b"\t", b"\t", b"\t", b"\x7f" * 3, b"6", b"\t", b"\x7f" * 3, b"4", b"\r"]:
            terminal.press(key, settle=0.3)
        assert terminal.read_until(f"/{STEPS}".encode(), 180), "no step on the screen"  # the training's steps
        (run,) = [folder for folder in runs.iterdir() if folder.is_dir()]
        assert RunLock.is_locked(run)
        steps_before = sum(1 for e in read_metrics(run) if e["kind"] == "step")
        assert steps_before < STEPS
        # the connection dropped: the terminal hangs up its foreground process group, the app and anything left in it
        os.killpg(terminal.process.pid, signal.SIGHUP)
        terminal.process.wait(timeout=30)  # the app ends on the hang-up (helpers/terminal.py: SIGHUP not ignored)
        for _ in follow_run(run):  # the training goes on without the app, to its end
            pass
        info = run_info(run)
        log = (run / "train.log").read_text()[-2000:] if (run / "train.log").exists() else "no train.log"
        assert info.status == "done", (info.status, info.error, log)
        assert sum(1 for e in read_metrics(run) if e["kind"] == "step") == STEPS > steps_before
        assert info.holdout_mcc is not None
    finally:
        terminal.close()
        for folder in runs.iterdir() if runs.is_dir() else []:
            pid_file = folder / "train.pid"
            if RunLock.is_locked(folder) and pid_file.exists():
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
