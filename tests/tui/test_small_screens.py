"""The columns and rows that matter stay in view on small screens (60x20, and 80x24 with more on it):
Runs' status, epochs and MCC columns, Evaluate's slices with their MCC, Predict's history."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.recorded import record
from helpers.tui import DEMO_RUN, demo_run, failed_run, wait_until
from textual.widgets import DataTable, Static

from workbench.core.data.cola import load_cola
from workbench.tui.app import make_app
from workbench.tui.panes.evaluate import EvaluatePane
from workbench.tui.panes.predict import HISTORY_ROWS, PredictPane
from workbench.tui.widgets.attributions import ExplainPanel
from workbench.tui.widgets.slices import LENGTH_HEADERS, SlicesView

SMALL = (60, 20)


def line_of(table: DataTable[object], y: int) -> str:
    """Row Y of TABLE as the screen shows it (0: the header), cut to the table's width."""
    return "".join(segment.text for segment in table.render_line(y))


@pytest.mark.parametrize("size", [SMALL, (80, 24)])
async def test_runs_keep_status_epochs_and_both_mccs_in_view(
    tiny_model_dir: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    """A sweep's trials (long names), failed with a long error, more than the list has rows (a scrollbar):
    the list was cut at "epo" at 60 columns, before the holdout column at 80."""
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    for n in range(9):
        failed_run(runs, f"lr-search-minilm-20240201-t{n}", started=f"2024-02-0{n + 1}T12:00:00")
    app = make_app(runs_dir=runs, run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=size) as pilot:
        await pilot.press("5")
        table = app.query_one("#runs-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 10, what="the runs")
        await pilot.pause(0.2)
        header = line_of(table, 0).split()
        assert "status" in header and header[-1] in ("holdout", "model"), header  # whole, up to holdout at least
        assert {"epoch", "epochs"} & set(header) and {"val", "best"} & set(header), header
        shown = [line_of(table, y) for y in range(1, table.scrollable_content_region.height)]
        demo = next(line for line in shown if DEMO_RUN in line)  # the opened run: the cursor is on it
        assert "✓ done" in demo and "3/3" in demo and "0.300" in demo, demo  # its best validation MCC
        failed = next(line for line in shown if "failed" in line)
        assert "✗ failed" in failed and "0/3" in failed and "—  " in failed, failed  # both MCC cells: —


async def test_evaluate_shows_the_slices_with_their_mcc_at_60_columns(tiny_model_dir: Path, tmp_path: Path) -> None:
    """An evaluation with the long warning of a model that answers 'acceptable' almost always: at 60x20 the
    figures pushed the slices off the screen, and the length table read "tokens n acc M"."""
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    holdout = load_cola()["holdout"]
    rows = [
        (sentence, int(label), 1 if i else 0, 0.9 if i else 0.2, source)
        for i, (sentence, label, source) in enumerate(
            zip(holdout["sentence"], holdout["label"], holdout["source"], strict=True)
        )
    ]
    record(runs / DEMO_RUN, "holdout", rows)
    app = make_app(runs_dir=runs, run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        await wait_until(pilot, lambda: pane.report is not None, what="the recorded holdout")
        assert "⚠" in str(app.query_one("#eval-metrics", Static).render())  # the long warning is there
        await pilot.press("s")
        await pilot.pause(0.2)
        view = app.query_one(SlicesView)
        lengths = app.query_one("#eval-lengths", DataTable)
        assert "by length" in str(view.border_title)
        header = line_of(lengths, 0).split()
        assert header[:3] == ["tokens", "n", "MCC"] and set(header) <= set(LENGTH_HEADERS), header  # whole words
        assert lengths.region.bottom <= app.screen.region.bottom - 2  # above the status and key lines
        assert lengths.region.height >= 1 + lengths.row_count  # the header and every length bucket


@pytest.mark.parametrize(("size", "pair"), [(SMALL, False), ((80, 24), True)])
async def test_predict_keeps_its_history_in_view_under_the_attributions(
    tiny_model_dir: Path, tmp_path: Path, size: tuple[int, int], pair: bool
) -> None:
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
        await wait_until(
            pilot,
            lambda: (
                len(pane.history) == 2
                and panel.explanation is not None
                and panel.explanation.sentence == "The book was written John."
                and (not pair or panel.query_one("#pair-view").pair is not None)
            ),
            what="the answers",
        )
        await pilot.pause(0.3)
        history = app.query_one("#predict-history", DataTable)
        assert history.region.height >= HISTORY_ROWS and history.region.bottom <= pane.region.bottom
        assert "The book was written" in line_of(history, 1)  # both rows on screen (the sentences cut at 60
        assert "The book was written" in line_of(history, 2)  # columns: the last column, on the right)
        attributions = str(panel.attributions.render())
        assert "john" in attributions  # the tokens, whole or compact
