"""The TUI's views of what the model learned: grammar phenomena in Evaluate, the training map from Data,
minimal-pair suites in Evaluate. The real app, driven by keys, on the tiny BERT."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers.recorded import record
from helpers.tui import DEMO_RUN, demo_run, wait_until
from textual.widgets import DataTable

from workbench.core.data.cola import load_cola
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.panes.evaluate import EvaluatePane
from workbench.tui.widgets.slices import SlicesView

SIZE = (80, 24)
ANNOTATIONS = Path(__file__).parents[2] / "data" / "cola" / "CoLA_grammatical_annotations_minor_features.tsv"
QUESTION = ["Matrix Q", "Emb Q", "Complex QP", "RC", "Island"]


@pytest.fixture
def runs(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    demo_run(folder, tiny_model_dir)
    return folder


def app_for(runs: Path, run: str | None = DEMO_RUN) -> WorkbenchApp:
    app = make_app(runs_dir=runs, run=run)
    app.load_on_start = False
    return app


def question_sentences() -> set[str]:
    """The holdout sentences the annotation file marks with a Question feature, read with csv alone."""
    with ANNOTATIONS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return {r["Sentence"] for r in rows if r["Domain"] == "Out" and any(r[c] == "1" for c in QUESTION)}


async def test_grammar_view_and_filtering_the_errors_to_a_phenomenon(runs: Path) -> None:
    holdout = load_cola()["holdout"]
    questions = question_sentences()
    is_question = holdout["sentence"].isin(questions)
    # wrong on every Question sentence and on the first 20 others, right elsewhere
    wrong = is_question | (holdout.index < 20)
    predicted = holdout["label"].where(~wrong, 1 - holdout["label"])
    rows = list(
        zip(
            holdout["sentence"],
            holdout["label"],
            predicted,
            predicted.astype(float) * 0.8 + 0.1,
            holdout["source"],
            strict=True,
        )
    )
    record(runs / DEMO_RUN, "holdout", rows)
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        await wait_until(
            pilot,
            lambda: pane.report is not None and pane.phenomena is not None,
            what="the recorded holdout and its phenomena",
            timeout=240,
        )
        for _ in range(4):
            await pilot.press("s")
        view = app.query_one(SlicesView)
        assert "grammar" in str(view.border_title)
        table = app.query_one("#eval-phenomena", DataTable)
        features = [str(table.get_row_at(i)[0]).strip() for i in range(table.row_count)]
        row = features.index("Question")
        assert table.get_row_at(row)[1] == "-1.00"
        await pilot.pause()
        first_line = "".join(segment.text for segment in table.render_line(1))  # under the header
        assert str(table.get_row_at(0)[1]) in first_line, first_line  # the MCC in view at 80x24
        wrong_table = app.query_one("#eval-wrong", DataTable)
        assert wrong_table.row_count == int(wrong.sum())
        table.focus()
        table.move_cursor(row=row)
        await pilot.press("enter")
        await pilot.pause()
        # by text: the 3 Question sentences the annotation writes otherwise match nothing; a sentence the
        # holdout has twice may be annotated differently each time (rows pair off in order)
        assert set(pane.wrong["sentence"]) == questions & set(holdout["sentence"])
        assert len(set(pane.wrong["sentence"])) <= wrong_table.row_count <= int(is_question.sum())
        assert "Question" in str(wrong_table.border_title)
        await pilot.press("enter")  # again: all errors
        await pilot.pause()
        assert wrong_table.row_count == int(wrong.sum())


async def test_a_minimal_pair_suite_from_the_dataset_switcher_and_enter_pins_it(runs: Path) -> None:
    from workbench.core.explore.pairs import load_suite, score_suite
    from workbench.core.model.loading import load_model, load_tokenizer
    from workbench.tui.panes.predict import PredictPane
    from workbench.tui.widgets.attributions import ExplainPanel

    suite_file = Path(__file__).parents[2] / "data" / "pairs" / "example.tsv"
    model_dir = runs / DEMO_RUN / "model"
    expected = score_suite(load_model(str(model_dir)), load_tokenizer(str(model_dir)), load_suite(suite_file))
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        while pane.dataset != "pairs:example.tsv":
            await pilot.press("d")
        await wait_until(pilot, lambda: pane.pairs is not None, what="the suite scored", timeout=240)
        assert pane.pairs.right == expected.right and pane.pairs.n == 42
        wrong = app.query_one("#eval-wrong", DataTable)
        assert wrong.row_count == 42 - expected.right
        assert [str(column.label) for column in wrong.ordered_columns] == ["Δp", "parad", "good ≻ bad"]
        sources = app.query_one("#eval-sources", DataTable)
        assert sources.row_count == len(expected.groups("paradigm"))
        if not wrong.row_count:
            return
        first = expected.failed().iloc[0]
        wrong.focus()
        await pilot.press("enter")
        predict = app.query_one(PredictPane)
        await wait_until(
            pilot, lambda: app.query_one(ExplainPanel).pinned is not None, what="the pinned pair", timeout=120
        )
        assert app.query_one(ExplainPanel).pinned.sentence == first["good"]
        assert predict.box.value == first["bad"]


async def test_the_training_map_screen_from_the_data_pane(runs: Path) -> None:
    import numpy as np

    from workbench.core.runs.dynamics import TrainingDynamics
    from workbench.core.runs.lookup import load_run_data
    from workbench.tui.screens.training_map import MapChart, MapTable, TrainingMapScreen

    labels = load_run_data(runs / DEMO_RUN)["train"]["label"].to_numpy()[:320]
    p_gold = np.random.default_rng(0).random((3, 320)).astype(np.float32)
    p_gold[:, 310:] = np.nan  # a run stopped before its last 10 sentences
    TrainingDynamics(p_gold, labels.astype(np.int8)).save(runs / DEMO_RUN)
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await wait_until(pilot, lambda: app.active_pane == "data", what="the data pane")  # a loaded machine
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, TrainingMapScreen), what="the map screen")
        screen = app.screen
        assert isinstance(screen, TrainingMapScreen)
        await wait_until(pilot, lambda: screen.training_map is not None, what="the map read", timeout=120)
        table = screen.query_one("#map-table", MapTable)
        assert table.row_count == 320
        lowest = float(np.min(p_gold[:, :310].mean(axis=0)))
        assert table.get_row_at(0)[0] == f"{lowest:.2f}"  # least confident first
        assert [table.get_row_at(row)[:5] for row in (310, 319)] == [
            ("—", "—", "—", str(labels[r]), "unrecorded")
            for r in (screen.shown.iloc[310]["row"], screen.shown.iloc[319]["row"])
        ]
        assert "not recorded 10" in str(screen.query_one("#map-title").render())
        await pilot.pause()
        first = str(screen.shown.iloc[0]["sentence"])
        line = "".join(segment.text for segment in table.render_line(1))
        assert first[:40] in line, line  # the sentence takes the width the figures leave (it had 8 columns)
        await pilot.press("r")  # hard
        hard = screen.training_map.counts()["hard"]
        assert table.row_count == hard and screen.region_filter == "hard"
        trajectory = str(screen.query_one("#map-trajectory").render())
        row = int(screen.shown.iloc[0]["row"])
        assert f"1:{p_gold[0, row]:.2f}" in trajectory and f"3:{p_gold[2, row]:.2f}" in trajectory
        chart = screen.query_one(MapChart)
        await wait_until(pilot, lambda: chart.redraws > 1)
        assert "confidence vs variability" in str(chart.render())
        await pilot.press("escape")
        assert not isinstance(app.screen, TrainingMapScreen)


async def test_a_one_epoch_map_shows_its_points_and_no_legend_over_them(runs: Path) -> None:
    """One epoch: every point at variability 0, along the left edge, where plotext drew its legend (the
    markers are named in the title instead)."""
    import numpy as np

    from workbench.core.runs.dynamics import TrainingDynamics
    from workbench.core.runs.lookup import load_run_data
    from workbench.tui.screens.training_map import MapChart, TrainingMapScreen

    labels = load_run_data(runs / DEMO_RUN)["train"]["label"].to_numpy()[:320]
    p_gold = np.random.default_rng(0).random((1, 320)).astype(np.float32)
    TrainingDynamics(p_gold, labels.astype(np.int8)).save(runs / DEMO_RUN)
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await wait_until(pilot, lambda: app.active_pane == "data", what="the data pane")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, TrainingMapScreen), what="the map screen")
        screen = app.screen
        assert isinstance(screen, TrainingMapScreen)
        await wait_until(pilot, lambda: screen.training_map is not None, what="the map read", timeout=120)
        chart = screen.query_one(MapChart)
        await wait_until(pilot, lambda: "mostly right" in chart.render().plain, what="the map drawn")
        title, *plot = chart.render().plain.splitlines()
        assert "+ mostly right" in title and "x rarely" in title  # the markers named once, above the plot
        body = "\n".join(plot)
        assert "mostly right" not in body and "rarely" not in body and "sometimes" not in body
        edge = {line.split("┤", 1)[1][:1] for line in plot if "┤" in line and line.index("┤") < 6}
        assert {"+", "x"} <= edge, plot  # right and wrong sentences, drawn at variability 0


async def test_a_run_without_a_map_says_why(runs: Path) -> None:
    from workbench.tui.screens.training_map import TrainingMapScreen

    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")
        await wait_until(pilot, lambda: app.active_pane == "data", what="the data pane")  # a loaded machine
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, TrainingMapScreen), what="the map screen")
        screen = app.screen
        assert isinstance(screen, TrainingMapScreen)
        title = screen.query_one("#map-title")
        await wait_until(
            pilot, lambda: "no training map recorded" in str(title.render()), what="the reason", timeout=120
        )
