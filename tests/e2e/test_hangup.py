"""A hang-up (what a dropped SSH connection sends) closes the app, never the training it started: the
real `workbench` in a pseudo-terminal, a real SIGHUP, a cold training process."""

from __future__ import annotations

import os
import re
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import follow_run, read_metrics
from workbench.core.runs.status import run_info

STEPS = 6 * 54  # 6 epochs of the tiny CoLA's 216 training sentences at batch 4
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b\][^\x07]*\x07")


def read_until(fd: int, goal: Callable[[str], bool], limit: float) -> str:
    """What the app has drawn (escape codes removed) once GOAL holds for it."""
    seen = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
            if goal(ANSI.sub(b"", seen).decode(errors="replace")):
                return ANSI.sub(b"", seen).decode(errors="replace")
    raise AssertionError(f"timed out; the screen ended with {ANSI.sub(b'', seen)[-1500:]!r}")


def test_a_hang_up_closes_the_app_and_the_training_finishes(tiny_model_dir: Path, tiny_cola_dir: Path,
                                                            tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    runs = tmp_path / "runs"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the workbench, as a user starts it in a terminal
        os.environ.update(TERM="xterm-256color", WORKBENCH_NOTIFY="0")
        os.execv(sys.executable, [sys.executable, "-m", "workbench.cli", "--model", str(tiny_model_dir),
                                  "--data", str(tiny_cola_dir), "--runs", str(runs)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        read_until(fd, lambda screen: "ready" in screen, 120)
        # Train; the form: tab to epochs (model, data, epochs), 6; batch_size 4: 324 steps, long enough to be
        # hung up on mid-run
        for key in [b"2", b"\t", b"\t", b"\t", b"\x7f" * 3, b"6", b"\t", b"\x7f" * 3, b"4", b"\r"]:
            os.write(fd, key)
            time.sleep(0.3)
        read_until(fd, lambda screen: "step " in screen and f"/{STEPS}" in screen, 180)  # its steps on the screen
        (run,) = [folder for folder in runs.iterdir() if folder.is_dir()]
        assert RunLock.is_locked(run)
        steps_before = sum(1 for e in read_metrics(run) if e["kind"] == "step")
        assert steps_before < STEPS
        os.kill(pid, signal.SIGHUP)  # the connection dropped
        os.close(fd)
        fd = -1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.1)
        assert time.monotonic() < deadline, "the app did not end on the hang-up"
        pid = 0
        for _ in follow_run(run):  # the training goes on without the app, to its end
            pass
        info = run_info(run)
        log = (run / "train.log").read_text()[-2000:] if (run / "train.log").exists() else "no train.log"
        assert info.status == "done", (info.status, info.error, log)
        assert sum(1 for e in read_metrics(run) if e["kind"] == "step") == STEPS > steps_before
        assert info.holdout_mcc is not None
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if fd >= 0:
            os.close(fd)
        for folder in runs.iterdir() if runs.is_dir() else []:
            pid_file = folder / "train.pid"
            if RunLock.is_locked(folder) and pid_file.exists():
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
