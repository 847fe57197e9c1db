"""Pilot tests of exploring predictions in the TUI: attributions and minimal pairs in Predict, the
Evaluate pane as the place to investigate (recorded evaluations, FP/FN filters, slices, neighbours),
the diff screen of two runs, and bad input. The real app, driven by keys, on the tiny BERT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.recorded import record
from helpers.tui import DEMO_RUN, demo_run, wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from workbench.core.base.config import DEFAULT_MODEL
from workbench.core.evaluation.evaluate import predictions_file
from workbench.core.explore.neighbors import training_frame
from workbench.core.model.predict import Predictor
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.messages import AttributionsReady, EvaluationLoaded
from workbench.tui.panes.evaluate import EvaluatePane
from workbench.tui.panes.predict import PredictPane
from workbench.tui.panes.runs import RunsPane
from workbench.tui.screens.diff import DiffScreen
from workbench.tui.widgets.attributions import DOWN, UP, AttributionView, ExplainPanel, PairView
from workbench.tui.widgets.slices import ReliabilityChart, SlicesView, ThresholdChart

SIZE = (80, 24)

# (sentence, label, predicted, p_acceptable, source): 3 right, 2 false positives, 1 false negative
ROWS = [
    ("The book was written by John.", 1, 1, 0.91, "r-67"),
    ("Book the was written John by.", 0, 1, 0.83, "r-67"),
    ("Him likes she.", 0, 1, 0.61, "c-05"),
    ("The cat sat on the mat.", 1, 0, 0.22, "swb04"),
    ("Colorless green ideas sleep furiously.", 1, 1, 0.55, "c-05"),
    ("Sat the on mat cat.", 0, 0, 0.12, "swb04"),
]


def text_of(app: WorkbenchApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def copy_run(runs: Path, name: str) -> Path:
    """Another finished run with the same model and history, and no evaluation recorded."""
    target = runs / name
    shutil.copytree(runs / DEMO_RUN, target, ignore=shutil.ignore_patterns("eval.json", "predictions*", "*.npz"))
    return target


@pytest.fixture
def runs(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    demo_run(folder, tiny_model_dir)
    return folder


def app_for(runs: Path, run: str | None = DEMO_RUN) -> WorkbenchApp:
    app = make_app(runs_dir=runs, run=run)
    app.load_on_start = False  # only the Data pane needs CoLA and the tokenizer
    return app


def panel(app: WorkbenchApp) -> ExplainPanel:
    return app.query_one(ExplainPanel)


async def wait_for_explanation(pilot: Pilot[None], app: WorkbenchApp, sentence: str) -> None:
    """Until Predict's attributions are those of `sentence`: a key typed after a pause longer than the
    debounce (a loaded machine) may have a prefix explained first, and the latest input wins."""
    await wait_until(
        pilot,
        lambda: panel(app).explanation is not None and panel(app).explanation.sentence == sentence,
        what=f"attributions of {sentence!r}",
    )


# ---------------------------------------------------------------- Predict: attributions and pairs


async def test_attributions_appear_in_predict_after_typing(runs: Path, tiny_model_dir: Path) -> None:
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", *"The book was written by John.")
        await wait_for_explanation(pilot, app, "The book was written by John.")
        explanation = panel(app).explanation
        assert explanation.sentence == "The book was written by John."
        tokenizer = Predictor.load(tiny_model_dir).tokenizer
        assert explanation.tokens == tokenizer.convert_ids_to_tokens(
            tokenizer("The book was written by John.")["input_ids"]
        )
        shown = str(app.query_one("#attributions", AttributionView).render())
        assert "IG" in shown and "why" in shown
        assert "book was written by john ." in shown  # every word token, in order; [CLS]/[SEP] left out
        assert "[CLS]" not in shown
        # the probabilities above come from the sentence box's own prediction, not from the explanation
        assert app.query_one(PredictPane).latest.sentence == explanation.sentence


async def test_the_latest_input_wins(runs: Path) -> None:
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", *"The cat sat.")
        # a loaded machine may pause between keys longer than the debounce: a prefix may be explained first
        await wait_for_explanation(pilot, app, "The cat sat.")
        first = panel(app).explanation
        assert first.sentence == "The cat sat."
        box = app.query_one("#predict-input", Input)
        await pilot.press("backspace", *" on the mat.", *["backspace"] * 4, *"rug.")  # typing goes on meanwhile
        assert box.value == "The cat sat on the rug."  # every key reached the box at once
        await wait_until(pilot, lambda: panel(app).explanation is not first, what="newer attributions")
        await app.workers.wait_for_complete()
        await pilot.pause(0.4)  # anything still queued has arrived
        assert panel(app).explanation.sentence == "The cat sat on the rug."
        # an older sentence's answer arriving late is dropped
        panel(app).post_message(AttributionsReady("The cat sat.", first))
        await pilot.pause(0.2)
        assert panel(app).explanation.sentence == "The cat sat on the rug."
        assert "rug" in str(app.query_one("#attributions", AttributionView).render())


async def test_pin_and_variant_shows_both_and_the_change(runs: Path, tiny_model_dir: Path) -> None:
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", *"The book was written by John.")
        pane = app.query_one(PredictPane)
        await wait_until(pilot, lambda: pane.latest is not None, what="a prediction")
        await pilot.press("ctrl+t")
        view = app.query_one(PairView)
        assert view.display and "pinned A" in str(view.render())
        await pilot.press("ctrl+u", *"The book was written John.")
        await wait_until(
            pilot, lambda: view.pair is not None and view.pair.b == "The book was written John.", what="the pair"
        )
        pair = view.pair
        predictor = Predictor.load(tiny_model_dir)
        a, b = predictor.predict(["The book was written by John.", "The book was written John."])
        assert pair.probabilities_a["acceptable"] == pytest.approx(a.probabilities["acceptable"], abs=1e-5)
        assert pair.probabilities_b["acceptable"] == pytest.approx(b.probabilities["acceptable"], abs=1e-5)
        change = b.probabilities["acceptable"] - a.probabilities["acceptable"]
        assert pair.delta_acceptable == pytest.approx(change, abs=1e-5)
        assert [w for w, changed in pair.words_a if changed] == ["by"] and not any(c for _, c in pair.words_b)
        shown = str(view.render())
        assert f"{a.probabilities['acceptable']:.3f}" in shown and f"{b.probabilities['acceptable']:.3f}" in shown
        assert f"B − A: {pair.delta_acceptable:+.3f}" in shown
        # both sentences' attributions, and whether the model tells them apart (|Δp| < 0.10: it does not)
        assert pair.explanation_a is not None and pair.explanation_b is not None and shown.count("why ") == 2
        assert ("does not separate them" in shown) == (abs(change) < 0.10)
        # the attributions below follow the typed variant
        await wait_until(
            pilot,
            lambda: (
                panel(app).explanation is not None and panel(app).explanation.sentence == "The book was written John."
            ),
        )
        await pilot.press("ctrl+t")  # unpin
        assert not view.display and panel(app).pinned is None


async def test_no_color_marks_direction_with_signs(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        assert app.no_color
        await pilot.press("4", *"The book was written by John.")
        await wait_for_explanation(pilot, app, "The book was written by John.")
        explanation = panel(app).explanation
        shown = str(app.query_one("#attributions", AttributionView).render()).splitlines()[-1]
        words = [
            (t, a)
            for t, a in zip(explanation.tokens, explanation.attributions, strict=True)
            if t not in ("[CLS]", "[SEP]")
        ]
        strongest, value = max(words, key=lambda pair: abs(pair[1]))
        assert (UP if value > 0 else DOWN) * 3 + strongest in shown.split()  # the strongest: three marks
        await pilot.press("ctrl+t", "ctrl+u", *"The book was written John.")
        await wait_until(pilot, lambda: app.query_one(PairView).pair is not None, what="the pair")
        assert "[by]" in str(app.query_one(PairView).render())  # changed words bracketed, not only coloured


async def test_bad_input_in_predict_never_crashes_and_says_why(runs: Path) -> None:
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "slash")  # into the sentence box (4 shows the history)
        box = app.query_one("#predict-input", Input)
        view = app.query_one("#attributions", AttributionView)
        cases = [
            ("\x00\x07\x1b", "empty sentence"),  # control characters only
            ("😺😺😺", "no word the model knows"),  # emoji only: predicted ([UNK]), nothing to attribute
            (("The dog barked. " * 700)[:10_000], "truncated"),
            ("The\x07 cat\x00 sat.", "the cat sat ."),  # control characters dropped
        ]
        for sentence, shown in cases:
            box.value = sentence
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda shown=shown: shown in str(view.render()),
                timeout=30,
                what=f"{shown!r} (shown: {view.render()})",
            )
            assert app.is_running
        box.value = ""
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert str(view.render()) == "" and app.is_running


# ---------------------------------------------------------------- Evaluate: the place to investigate


async def test_evaluate_shows_the_opened_runs_recordings_and_d_switches_them(runs: Path) -> None:
    record(runs / DEMO_RUN, "holdout", ROWS)
    record(runs / DEMO_RUN, "in_domain_dev", ROWS[:4])
    record(runs / DEMO_RUN, "mydata", ROWS[:3])  # an entry of another name (older runs named --data files so)
    copy_run(runs, "other")
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        await wait_until(pilot, lambda: pane.report is not None, what="the recorded holdout")
        assert pane.report.name == "holdout" and pane.result_run == DEMO_RUN
        assert "holdout n=6 · recorded" in text_of(app, "#eval-metrics")
        assert pane.datasets == ["holdout", "in_domain_dev", "validation", "train", "mydata", "pairs:example.tsv"]
        assert app.query_one("#eval-wrong", DataTable).row_count == 3
        assert app.query_one("#eval-sources", DataTable).row_count == 3  # c-05, r-67, swb04

        await pilot.press("d")
        await wait_until(pilot, lambda: pane.report is not None and pane.report.name == "in_domain_dev")
        assert "in_domain_dev n=4" in text_of(app, "#eval-metrics")
        assert app.query_one("#eval-wrong", DataTable).row_count == 3
        await pilot.press("d")  # validation: not evaluated
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert pane.report is None and "no evaluation on validation yet" in text_of(app, "#eval-metrics")
        assert app.query_one("#eval-wrong", DataTable).row_count == 0
        await pilot.press("d", "d")  # train, then mydata
        await wait_until(pilot, lambda: pane.report is not None and pane.report.name == "mydata")
        assert "mydata n=3" in text_of(app, "#eval-metrics")

        # another run opened: nothing of demo-run's is shown under its name, even an answer arriving late
        await app.open_run("other")
        await pilot.pause(0.1)
        assert pane.report is None and pane.dataset == "holdout"  # mydata was demo-run's
        assert "other has no evaluation on holdout yet" in text_of(app, "#eval-metrics")
        pane.post_message(EvaluationLoaded(DEMO_RUN, "holdout", ["holdout"], object()))
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert pane.report is None and "run other" in text_of(app, "#eval-header")

        # an evaluation in the TUI is recorded in the run folder, as the CLI's is
        await pilot.press("d", "e")
        await wait_until(pilot, lambda: pane.report is not None, what="the evaluation")
        assert pane.report.name == "in_domain_dev" and pane.result_run == "other"
        recorded = json.loads((runs / "other" / "eval.json").read_text(encoding="utf-8"))
        assert list(recorded) == ["in_domain_dev"] and recorded["in_domain_dev"]["n"] == pane.report.n == 527
        assert predictions_file(runs / "other", "in_domain_dev").is_file()
        assert "in_domain_dev n=527 · recorded" in text_of(app, "#eval-metrics")


async def test_damaged_recordings_are_a_clear_line_in_evaluate(runs: Path) -> None:
    record(runs / DEMO_RUN, "holdout", ROWS)
    record(runs / DEMO_RUN, "in_domain_dev", ROWS)
    predictions_file(runs / DEMO_RUN, "holdout").write_bytes(b"\x00\xff garbage\n")
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        await wait_until(
            pilot,
            lambda: "predictions.tsv: cannot read" in text_of(app, "#eval-metrics"),
            what=f"a clear line ({text_of(app, '#eval-metrics')})",
        )
        assert pane.report is None and app.is_running
        (runs / DEMO_RUN / "eval.json").write_text("{not json", encoding="utf-8")
        await pilot.press("d")
        await wait_until(pilot, lambda: "eval.json: cannot read" in text_of(app, "#eval-metrics"), what="a clear line")
        assert pane.report is None and app.is_running


async def test_false_positive_and_false_negative_filters(runs: Path) -> None:
    record(runs / DEMO_RUN, "holdout", ROWS)
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        table = app.query_one("#eval-wrong", DataTable)
        await wait_until(pilot, lambda: pane.report is not None, what="the recorded holdout")
        assert table.row_count == 3 and list(pane.wrong["confidence"]) == pytest.approx([0.83, 0.78, 0.61])
        # p(acceptable) and the predicted label in the list, as in the detail: the false negative (p 0.22) reads
        # 0.220 unacc, never its confidence 0.78; the counts by kind in the header (ROWS: 2 FP, 1 FN)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(3)]
        assert [row[:2] for row in rows] == [["0.830", "acc"], ["0.220", "unacc"], ["0.610", "acc"]]
        assert "2 FP · 1 FN" in text_of(app, "#eval-header")
        await pilot.press("down")
        await wait_until(pilot, lambda: "p(ok) 0.220" in text_of(app, "#eval-detail"))
        await pilot.press("up", "f")
        assert pane.error_kind == "false_positive" and "false positives (f)" in text_of(app, "#eval-header")
        assert table.row_count == 2 and set(pane.wrong["label"]) == {0} and set(pane.wrong["predicted"]) == {1}
        assert table.border_title == "2 false positives (2 FP, 1 FN)"
        await pilot.press("f")
        assert table.row_count == 1 and pane.wrong["sentence"].iloc[0] == "The cat sat on the mat."
        await wait_until(pilot, lambda: "source swb04" in text_of(app, "#eval-detail"))
        assert "false negative" in text_of(app, "#eval-detail")
        await pilot.press("f")
        assert pane.error_kind == "all" and table.row_count == 3


async def test_slices_beside_the_per_source_table(runs: Path) -> None:
    record(runs / DEMO_RUN, "holdout", ROWS)
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        await wait_until(pilot, lambda: pane.report is not None, what="the recorded holdout")
        view = app.query_one(SlicesView)
        assert "per source" in str(view.border_title)
        await pilot.press("s")
        lengths = app.query_one("#eval-lengths", DataTable)
        assert lengths.display and lengths.row_count == 5 and "by length" in str(view.border_title)
        assert sum(int(lengths.get_row_at(i)[1]) for i in range(5)) == 6
        await pilot.press("s")
        reliability = app.query_one(ReliabilityChart)
        # by hand: the six rows' confidences 0.91 0.83 0.61 0.78 0.55 0.88 fall in six bins, right 1 0 0 0 1 1
        ece = (0.09 + 0.83 + 0.61 + 0.78 + 0.45 + 0.12) / 6
        assert reliability.display and reliability.reliability.ece == pytest.approx(ece)
        await wait_until(pilot, lambda: reliability.redraws > 1)
        assert f"ECE {ece:.3f}" in str(reliability.render())
        await pilot.press("s")
        threshold = app.query_one(ThresholdChart)
        assert threshold.display and threshold.curve.threshold_in_use == 0.5
        await wait_until(pilot, lambda: threshold.redraws > 1)
        curve = pane.slices.threshold
        # the panel is narrow at 80 columns: the shortest title, both thresholds labelled (│ in use, * best)
        assert f"│0.50 *{curve.best_threshold:.2f}" in str(threshold.render())
        low_tick = str(threshold.render()).split("┤")[-2].split("\n")[-1].strip()
        assert float(low_tick) <= min(0.0, float(min(curve.mcc))) + 0.005  # the y axis reaches 0 (or the lowest MCC)
        await pilot.press("s")
        assert "grammar" in str(view.border_title)  # these sentences are not of the annotated holdout
        assert "no annotated sentence of holdout" in str(app.query_one("#eval-phenomena", DataTable).get_row_at(0)[0])
        await pilot.press("s")
        assert "per source" in str(view.border_title)


async def test_the_selected_sentence_shows_attributions_and_nearest_training_sentences(
    runs: Path, tiny_model_dir: Path
) -> None:
    record(runs / DEMO_RUN, "holdout", ROWS)
    app = app_for(runs)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        await wait_until(pilot, lambda: pane.report is not None, what="the recorded holdout")
        await pilot.press("down")  # the second most confident error
        sentence = pane.wrong["sentence"].iloc[1]
        await wait_until(pilot, lambda: len(pane.neighbors) == 5, timeout=120, what="the nearest sentences")
        training = training_frame(runs / DEMO_RUN / "model")
        assert len(training) == 320  # the run's train_limit
        known = set(zip(training["sentence"], training["label"], strict=True))
        assert all((n.sentence, n.label) in known for n in pane.neighbors)
        assert [n.similarity for n in pane.neighbors] == sorted((n.similarity for n in pane.neighbors), reverse=True)
        shown = text_of(app, "#eval-neighbors")
        assert "nearest in training" in shown and pane.neighbors[0].sentence in shown
        attributions = app.query_one("#eval-attributions", AttributionView)
        await wait_until(pilot, lambda: attributions.explanation is not None, what="attributions")
        assert attributions.explanation.sentence == sentence
        assert (runs / DEMO_RUN / "neighbors-train.npz").is_file()  # kept beside the model, as the CLI's


# ---------------------------------------------------------------- two runs side by side


def flipped(
    rows: list[tuple[str, int, int, float, str]], flips: dict[int, float]
) -> list[tuple[str, int, int, float, str]]:
    """ROWS with the predictions at FLIPS' positions given a new p(acceptable) (and its label)."""
    out = list(rows)
    for i, p in flips.items():
        sentence, label, _, _, source = rows[i]
        out[i] = (sentence, label, int(p > 0.5), p, source)
    return out


async def test_the_diff_screen_counts_and_lists_the_disagreements(runs: Path) -> None:
    record(runs / DEMO_RUN, "holdout", ROWS)
    record(copy_run(runs, "demo-run-b"), "holdout", flipped(ROWS, {1: 0.3, 4: 0.45}))
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        table = app.query_one("#runs-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 2, what="two runs")
        await pilot.press("v")  # nothing marked: a hint, no screen
        assert not isinstance(app.screen, DiffScreen)
        pane = app.query_one(RunsPane)
        table.focus()
        for run_id in (DEMO_RUN, "demo-run-b"):  # mark A, then B (space marks without moving)
            table.move_cursor(row=[info.id for info in pane.runs].index(run_id))
            await pilot.pause()
            await pilot.press("space")
        assert pane.marked == [DEMO_RUN, "demo-run-b"]
        await pilot.press("v")
        screen = app.screen
        assert isinstance(screen, DiffScreen) and (screen.run_a, screen.run_b) == (DEMO_RUN, "demo-run-b")
        await wait_until(pilot, lambda: screen.diff is not None, what="the diff")
        counts = str(screen.query_one("#diff-counts", Static).render())
        # A right on rows 0, 4, 5; B right on rows 0, 1, 5
        assert "both right 2" in counts and "only A 1" in counts and "only B 1" in counts and "both wrong 2" in counts
        disagreements = screen.query_one("#diff-table", DataTable)
        assert disagreements.row_count == 2
        first = [str(cell) for cell in disagreements.get_row_at(0)]
        assert first[:4] == ["B", "0", "0.830", "0.300"] and first[5] == ROWS[1][0]  # the largest gap first
        await pilot.press("enter")  # try it in Predict
        assert not isinstance(app.screen, DiffScreen) and app.active_pane == "predict"
        assert app.query_one("#predict-input", Input).value == ROWS[1][0]


async def test_the_diff_screen_offers_to_evaluate_a_run_without_predictions(runs: Path) -> None:
    record(runs / DEMO_RUN, "holdout", ROWS)
    copy_run(runs, "fresh")
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count == 2, what="two runs")
        table = app.query_one("#runs-table", DataTable)
        table.focus()
        for row in range(2):  # space marks without moving
            table.move_cursor(row=row)
            await pilot.pause()
            await pilot.press("space")
        await pilot.press("v")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        counts = screen.query_one("#diff-counts", Static)
        await wait_until(pilot, lambda: screen.missing == ["fresh"], what="the offer")
        assert "no predictions recorded for holdout by fresh: e evaluates" in str(counts.render())
        await pilot.press("e")
        await wait_until(
            pilot,
            lambda: "different sentences" in str(counts.render()),
            timeout=120,
            what=f"the evaluation, then a clear refusal ({counts.render()})",
        )
        assert predictions_file(runs / "fresh", "holdout").is_file()  # recorded as `workbench eval` does
        assert app.is_running and screen.diff is None
        await pilot.press("escape")
        assert not isinstance(app.screen, DiffScreen)


# ---------------------------------------------------------------- the look, at 80x24


@pytest.fixture
def demo_app(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WorkbenchApp:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    demo_run(Path("runs"), tiny_model_dir)
    app = make_app(model=DEFAULT_MODEL, runs_dir=Path("runs"), run=DEMO_RUN)
    app.load_on_start = False
    return app


# ---------------------------------------------------------------- seed groups and sweeps (issue 11)


async def test_groups_and_sweeps_view_shows_a_seed_groups_spread(runs: Path) -> None:
    """G in Runs: the group's median, min and max, as `workbench runs` prints them (core GroupSummary.lines)."""
    from workbench.core.base.config import TrainConfig
    from workbench.core.search.groups import create_group, group_summary
    from workbench.tui.screens.many_runs import ManyRunsScreen

    create_group(runs, "g", TrainConfig(), [1, 2])
    for name in ("g-s1", "g-s2"):
        copy_run(runs, name)
    expected = group_summary(runs, "g")
    assert expected.validation is not None and expected.validation.n == 2
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.press("G")
        screen = app.screen
        assert isinstance(screen, ManyRunsScreen)
        await wait_until(pilot, lambda: "group g" in screen.text, what="the groups view")
        assert "group g: 2/2 seeds done" in screen.text
        assert f"{expected.validation.median:.3f}" in screen.text
        await pilot.press("escape")
        assert not isinstance(app.screen, ManyRunsScreen)


async def test_the_cli_and_the_evaluate_pane_record_the_same_entry(runs: Path) -> None:
    """One evaluate-and-record sequence (core `evaluate_and_record`): `workbench eval` on one copy of a run and
    the Evaluate pane on another write the same eval.json entry and the same predictions file."""
    import json

    from workbench.cli import main

    copy_run(runs, "by-cli")
    assert main(["eval", "by-cli", "--runs", str(runs), "--split", "holdout"]) == 0
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "e")
        pane = app.query_one(EvaluatePane)
        await wait_until(
            pilot,
            lambda: (runs / DEMO_RUN / "eval.json").is_file() and pane.report is not None,
            timeout=60,
            what="the pane's evaluation",
        )
        await app.workers.wait_for_complete()
    by_cli = json.loads((runs / "by-cli" / "eval.json").read_text())
    by_pane = json.loads((runs / DEMO_RUN / "eval.json").read_text())
    assert by_pane["holdout"] == by_cli["holdout"] and by_cli["holdout"]["n"] == 516
    assert (runs / DEMO_RUN / "predictions.tsv").read_text() == (runs / "by-cli" / "predictions.tsv").read_text()
