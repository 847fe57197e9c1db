"""The workbench in a real pseudo-terminal: the bytes the app writes, as a terminal receives them."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import workbench

REPO = Path(workbench.__file__).resolve().parents[1]  # the tree under test, whatever is installed

# an SGR sequence (ESC [ params m), and the colour parameters it can carry: 30-38 and 40-48 (38/48 start a
# 256-colour or truecolour one), 90-97 and 100-107; 39 and 49 are the terminal's own colours
SGR = re.compile(rb"\x1b\[([0-9;:]*)m")
COLOUR_PARAMETERS = {*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)}


def colour_codes(output: bytes) -> list[bytes]:
    """The SGR sequences of OUTPUT that set a colour (a 256-colour or truecolour one counts once)."""
    found = []
    for match in SGR.finditer(output):
        parameters = [int(p) for p in re.split(rb"[;:]", match.group(1)) if p]
        if COLOUR_PARAMETERS & set(parameters):
            found.append(match.group(0))
    return found


class Terminal:
    """`workbench ARGS` in a pseudo-terminal of SIZE (columns, rows) with ENV added to the environment."""

    def __init__(
        self, args: list[str], env: dict[str, str], size: tuple[int, int] = (80, 24), cwd: Path | None = None
    ) -> None:
        self.fd, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        environment = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(REPO), **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=environment,
            cwd=cwd,
            start_new_session=True,
            # a hang-up's own disposition, as a login shell gives it: a test run under nohup (which ignores
            # SIGHUP, and every process it starts inherits that) would otherwise never see the app hang up
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
        )
        os.close(follower)
        self.output = b""

    def read_until(self, text: bytes, timeout: float) -> bool:
        """Read until TEXT has been written (True) or TIMEOUT seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            self.read_for(0.1)
        return text in self.output

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, min(0.1, deadline - time.monotonic())))
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:  # the app has exited: the terminal is closed
                    return

    def press(self, keys: bytes, settle: float = 0.5) -> None:
        os.write(self.fd, keys)
        self.read_for(settle)

    def close(self, timeout: float = 20.0) -> int:
        """Quit with ctrl+q, read what is left; the exit status (the process killed if it did not end)."""
        try:
            os.write(self.fd, b"\x11")
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read_for(0.1)
        if self.process.poll() is None:
            self.process.kill()
        self.read_for(0.2)
        os.close(self.fd)
        return self.process.wait()
