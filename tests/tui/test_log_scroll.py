"""The Train pane's log shows its newest line: after a resumed run's history (many lines at once) and
its `done:` line, the log is scrolled to the very end."""

from __future__ import annotations

from textual.app import App, ComposeResult

from workbench.tui.widgets.log import TextLog


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TextLog(id="log")


async def test_the_log_scrolls_to_the_done_line_after_a_burst_of_history() -> None:
    app = LogApp()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(TextLog)
        for epoch in range(1, 31):  # a resumed run's history, written at once
            log.write(f"ep {epoch} MCC 0.{epoch:03d} acc 0.700 loss 0.41/0.52 (a long line that wraps)")
        await pilot.pause(0.2)
        log.display = False  # another pane is shown while the run ends
        log.write("done: holdout MCC 0.412 · acc 0.701")
        await pilot.pause(0.3)
        log.display = True  # back to the Train pane
        await pilot.pause(0.3)
        assert log.max_scroll_y > 0
        assert log.scroll_y == log.max_scroll_y
