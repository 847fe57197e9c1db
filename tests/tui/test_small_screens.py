"""The columns and rows that matter stay in view on small screens (60x20, and 80x24 with more on it):
Predict's history."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.tui import DEMO_RUN, demo_run, wait_until
from textual.widgets import DataTable

from workbench.tui.app import make_app
from workbench.tui.panes.predict import HISTORY_ROWS, PredictPane
from workbench.tui.widgets.attributions import ExplainPanel

SMALL = (60, 20)


def line_of(table: DataTable[object], y: int) -> str:
    """Row Y of TABLE as the screen shows it (0: the header), cut to the table's width."""
    return "".join(segment.text for segment in table.render_line(y))


@pytest.mark.parametrize(("size", "pair"), [(SMALL, False), ((80, 24), True)])
async def test_predict_keeps_its_history_in_view_under_the_attributions(tiny_model_dir: Path, tmp_path: Path,
                                                                         size: tuple[int, int], pair: bool) -> None:
    """The attributions wrap and grow (a pinned pair has both sentences): at 60x20, and at 80x24 with a
    pair, they pushed the history off the screen. Where they do not fit whole they are one line."""
    demo_run(tmp_path / "runs", tiny_model_dir)
    app = make_app(runs_dir=tmp_path / "runs", run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(PredictPane)
        panel = app.query_one(ExplainPanel)
        await pilot.press("4", *"The book was written by John.", "enter")
        await wait_until(pilot, lambda: len(pane.history) == 1, what="the first sentence")
        if pair:
            await wait_until(pilot, lambda: pane.latest is not None, what="its prediction")
            await pilot.press("ctrl+t")
        await pilot.press("ctrl+u", *"The book was written John.", "enter")
        await wait_until(pilot, lambda: len(pane.history) == 2 and panel.explanation is not None
                         and panel.explanation.sentence == "The book was written John."
                         and (not pair or panel.query_one("#pair-view").pair is not None), what="the answers")
        await pilot.pause(0.3)
        history = app.query_one("#predict-history", DataTable)
        assert history.region.height >= HISTORY_ROWS and history.region.bottom <= pane.region.bottom
        assert "The book was written" in line_of(history, 1)  # both rows on screen (the sentences cut at 60
        assert "The book was written" in line_of(history, 2)  # columns: the last column, on the right)
        attributions = str(panel.attributions.render())
        assert "john" in attributions  # the tokens, whole or compact
