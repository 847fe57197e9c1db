"""The Evaluate pane says which calibration the opened run shipped, why, and what to beware of
(eval.json's `calibration` entry, written by core/evaluation/calibration.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers.recorded import record
from helpers.tui import DEMO_RUN, demo_run, wait_until
from textual.widgets import Static

from workbench.core.evaluation.calibration import calibration_note, choose_calibration
from workbench.core.evaluation.evaluate import update_eval_json
from workbench.tui.app import make_app
from workbench.tui.panes.evaluate import EvaluatePane

ROWS = [
    ("The book was written by John.", 1, 1, 0.91, "r-67"),
    ("Book the was written John by.", 0, 1, 0.83, "r-67"),
    ("Him likes she.", 0, 0, 0.31, "c-05"),
    ("The cat sat on the mat.", 1, 0, 0.42, "swb04"),
]


def calibrated_model(seed: int = 3, n: int = 855) -> tuple[np.ndarray, np.ndarray]:
    """Validation log-odds of a model already calibrated (labels drawn from its p), about 70% acceptable."""
    rng = np.random.default_rng(seed)
    z = rng.normal(1.2, 1.5, n)
    return z, (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)


async def test_the_evaluate_pane_says_which_fit_was_shipped_and_why(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    record(runs / DEMO_RUN, "holdout", ROWS)
    calibration = choose_calibration(*calibrated_model())
    assert calibration.choice == "temperature" and calibration.best_mcc_threshold > 0.7  # the MCC threshold left out
    update_eval_json(runs / DEMO_RUN, lambda report: report.update(calibration=calibration.to_dict()))
    app = make_app(runs_dir=runs, run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        pane = app.query_one(EvaluatePane)
        await wait_until(pilot, lambda: pane.report is not None, what="the recorded holdout")
        text = str(app.query_one("#eval-metrics", Static).render())
    before, after = calibration.log_loss_before, calibration.log_loss_after
    assert "fit: temperature only" in text
    assert f"val log-loss {before:.3f} → {after:.3f}" in text
    assert f"MCC t {calibration.best_mcc_threshold:.2f} raised log-loss" in text


def test_the_notes_of_a_temperature_on_its_bound_and_of_an_older_entry() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 0.01, 600)
    y = (rng.random(600) < 1 / (1 + np.exp(-z * 100))).astype(int)
    lines, warnings = calibration_note(choose_calibration(z, y).to_dict())
    assert lines[0] == "fit: threshold + temperature" and warnings == ["T on its lower bound"]
    assert all(len(line) <= 30 for line in lines)
    assert calibration_note({"threshold": 0.6, "temperature": 1.4, "ece_before": 0.1}) == ([], [])
