"""NO_COLOR (https://no-color.org): the app sends no colour at all, in a real terminal, while every state
still shows (bold, reverse)."""

from __future__ import annotations

from pathlib import Path

from helpers.terminal import Terminal, colour_codes
from helpers.tui import failed_run, small_cola_file


def test_the_colour_codes_are_told_from_the_others() -> None:
    assert colour_codes(b"\x1b[1;39;49mok\x1b[7m\x1b[0m") == []  # bold, reverse, the terminal's own colours
    assert colour_codes(b"\x1b[38;5;253;48;5;235mgrey\x1b[1;31mred\x1b[38;2;1;2;3mrgb") == [
        b"\x1b[38;5;253;48;5;235m",
        b"\x1b[1;31m",
        b"\x1b[38;2;1;2;3m",
    ]


def test_no_color_sends_no_colour_in_any_pane(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    failed_run(runs, "failed-run")  # a failed run in Runs: a state that red would mark
    data = small_cola_file(tmp_path)
    terminal = Terminal(["--runs", str(runs), "--data", str(data), "--no-notify"], {"NO_COLOR": "1"}, cwd=tmp_path)
    try:
        assert terminal.read_until(b"Quit", timeout=60), terminal.output[-2000:]
        terminal.read_until(b"ready", timeout=30)  # the data shown
        for key in (b"5", b"2", b"3", b"1", b"4"):  # every pane drawn
            terminal.press(key, settle=1.0)
    finally:
        status = terminal.close()
    assert status == 0, terminal.output[-2000:]
    assert b"failed-run" in terminal.output  # the Runs pane was drawn
    codes = colour_codes(terminal.output)
    assert codes == [], f"{len(codes)} colour codes, e.g. {sorted(set(codes))[:5]}"
    assert b"\x1b[7m" in terminal.output or b";7m" in terminal.output or b";7;" in terminal.output  # reverse
