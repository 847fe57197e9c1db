"""The opened run is the one you explore: a training that starts and ends never changes the model that
Predict answers with; its run is offered (ctrl+o), and every probability carries its model."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import warm
from helpers.runs import save_tiny_bert
from helpers.tui import DEMO_RUN, demo_run, small_cola_file, wait_until
from textual.widgets import DataTable, Static

from workbench.core.base.config import TrainConfig
from workbench.tui.app import make_app
from workbench.tui.panes.evaluate import EvaluatePane
from workbench.tui.panes.predict import PredictPane
from workbench.tui.panes.runs import RunsPane
from workbench.tui.panes.train import TrainPane
from workbench.tui.widgets.attributions import PairView

A = "The book was written by John."
B = "The book was written John."


def other_tiny_model(folder: Path) -> Path:
    """A tiny BERT with other random weights than the demo run's (seed 1): its answers differ."""
    return save_tiny_bert(folder, seed=1)


def p_acceptable(model_dir: Path, sentence: str) -> float:
    """p(acceptable) computed directly with transformers (not through the workbench)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(**tokenizer(sentence, return_tensors="pt")).logits[0]
    return float(torch.softmax(logits, -1)[model.config.label2id["acceptable"]])


def header(app: object) -> str:
    return str(app.query_one("#predict-model", Static).render())  # type: ignore[attr-defined]


async def test_a_training_never_changes_the_model_predict_answers_with(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    opened = demo_run(runs, tiny_model_dir) / "model"
    base = other_tiny_model(tmp_path / "other-bert")
    data = small_cola_file(tmp_path)
    app = make_app(model=str(base), data=str(data), runs_dir=runs, run=DEMO_RUN, launcher=warm.launcher())
    app.load_on_start = False
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(PredictPane)
        await pilot.press("4", *A)
        await wait_until(pilot, lambda: pane.latest is not None and pane.latest.sentence == A, what="a prediction")
        await pilot.press("ctrl+t")  # pin A
        await pilot.pause(0.2)
        train = app.query_one(TrainPane)
        train.set_config(
            TrainConfig(
                model=str(base),
                data=str(data),
                epochs=40,
                batch_size=16,
                train_limit=96,
                learning_rate=1e-3,
                precision="fp32",
                eval_batch_size=256,
            )
        )
        await pilot.press("escape", "2", "s")  # out of the sentence box, to Train, start (40 epochs: still training
        # while the test types, on a quiet machine too)
        assert train.is_training, (train.last_status, [n.message for n in app._notifications], app.focused)
        new_run = train.live_run
        assert new_run and new_run != DEMO_RUN
        # the new run has a model of its own: from here on, a silent switch would show its numbers
        await wait_until(
            pilot,
            lambda: (runs / new_run / "model" / "config.json").is_file(),
            timeout=120,
            what="the new run's first saved model",
        )
        await pilot.press("4", "ctrl+u", *B)
        view = app.query_one(PairView)
        await wait_until(
            pilot,
            lambda: (
                pane.latest is not None and pane.latest.sentence == B and view.pair is not None and view.pair.b == B
            ),
            what="the variant's answers",
        )
        assert app.current_run == DEMO_RUN
        assert "run demo-run" in header(app)
        assert pane.latest.probabilities["acceptable"] == pytest.approx(p_acceptable(opened, B), abs=1e-5)
        assert view.pair.probabilities_a["acceptable"] == pytest.approx(p_acceptable(opened, A), abs=1e-5)
        assert "by run demo-run" in str(view.render())
        await pilot.press("enter")  # into the history, tagged with its model
        history = app.query_one("#predict-history", DataTable)
        await wait_until(pilot, lambda: history.row_count == 1, what="the history row")
        assert [str(cell) for cell in history.get_row_at(0)][3] == DEMO_RUN

        # the training ends (stopped here: a run that stops with a model is offered as one that finishes)
        await pilot.press("escape", "2", "x")
        await wait_until(pilot, lambda: not train.is_training, timeout=180, what="the training's end")
        await wait_until(pilot, lambda: app.offered_run == new_run, what="the offer")
        assert any("ctrl+o opens it" in n.message for n in app._notifications)
        assert app.current_run == DEMO_RUN and "run demo-run" in header(app)
        assert app.query_one(RunsPane).charted_run == DEMO_RUN
        assert app.query_one(EvaluatePane).run_dir == runs / DEMO_RUN

        await pilot.press("ctrl+o")  # the user switches: everything shown is recomputed by the new model
        assert app.current_run == new_run and f"run {new_run}" in header(app)
        new_model = runs / new_run / "model"
        await wait_until(
            pilot,
            lambda: view.pair is not None and view.model_label == f"run {new_run}" and pane.latest is not None,
            what="the pair recomputed by the new model",
        )
        assert view.pair.probabilities_a["acceptable"] == pytest.approx(p_acceptable(new_model, A), abs=1e-5)
        assert pane.latest.probabilities["acceptable"] == pytest.approx(p_acceptable(new_model, B), abs=1e-5)
        assert [str(cell) for cell in history.get_row_at(0)][3] == DEMO_RUN  # the old answer keeps its tag


async def test_a_run_that_ends_while_the_app_closes_is_offered_to_nobody(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A training's last message can arrive after the app's screens went: the app closes quietly."""
    from workbench.tui.messages import TrainFinished

    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    other = runs / "other-run"
    (runs / DEMO_RUN).rename(other)
    demo_run(runs, tiny_model_dir)
    app = make_app(model=str(tiny_model_dir), runs_dir=runs, run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
    assert not app.screen_stack  # closed
    app.on_train_finished(TrainFinished("other-run", "stopped"))
    assert app.offered_run is None
