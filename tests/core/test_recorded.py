"""core.recorded: a run's recorded evaluations read back as they were written, errors by kind."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.core.base.layout import RunError
from workbench.core.evaluation.evaluate import EvalReport, compute_metrics, predictions_file, record_report
from workbench.core.evaluation.recorded import (
    from_report,
    load_recorded,
    misclassified,
    ordered_names,
    recorded_names,
)

ROWS = [  # sentence, label, predicted, p_acceptable, source
    ("The book was written by John.", 1, 1, 0.91, "r-67"),
    ("Book the was written John by.", 0, 1, 0.83, "r-67"),
    ("Him likes she.", 0, 1, 0.61, "c-05"),
    ("The cat sat on the mat.", 1, 0, 0.22, "swb04"),
    ("NA", 0, 0, 0.12, "swb04"),  # a sentence that pandas would read as missing by default
]


def report(name: str, rows: list[tuple[str, int, int, float, str]] = ROWS) -> EvalReport:
    frame = pd.DataFrame(rows, columns=["sentence", "label", "predicted", "p_acceptable", "source"])
    frame["p_unacceptable"] = 1 - frame["p_acceptable"]
    metrics = compute_metrics(frame["label"].tolist(), frame["predicted"].tolist())
    return EvalReport(
        name=name,
        mcc=metrics["mcc"],
        accuracy=metrics["accuracy"],
        confusion=metrics["confusion"],
        n=metrics["n"],
        per_source=[],
        predictions=frame,
    )


def test_recorded_evaluations_read_back_as_recorded(tmp_path: Path) -> None:
    assert recorded_names(tmp_path) == [] and load_recorded(tmp_path, "holdout") is None
    for name in ("mydata", "in_domain_dev", "holdout"):
        record_report(tmp_path, report(name))
    assert recorded_names(tmp_path) == ["holdout", "in_domain_dev", "mydata"]  # standard first
    predictions_file(tmp_path, "in_domain_dev").unlink()  # an entry without its file is not offered
    assert recorded_names(tmp_path) == ["holdout", "mydata"]
    assert load_recorded(tmp_path, "in_domain_dev") is None
    loaded = load_recorded(tmp_path, "holdout")
    assert loaded is not None and loaded.name == "holdout" and loaded.n == 5
    assert loaded.mcc == pytest.approx(report("holdout").mcc)
    fresh = from_report(report("holdout"))
    assert loaded.predictions["sentence"].tolist() == fresh.predictions["sentence"].tolist()
    assert loaded.predictions["sentence"].iloc[4] == "NA"
    assert loaded.predictions["p_acceptable"].tolist() == pytest.approx(fresh.predictions["p_acceptable"].tolist())
    assert loaded.summary == fresh.summary


def test_a_damaged_eval_json_is_a_run_error(tmp_path: Path) -> None:
    (tmp_path / "eval.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunError, match="cannot read"):
        recorded_names(tmp_path)
    (tmp_path / "eval.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RunError, match="not an eval.json"):
        load_recorded(tmp_path, "holdout")


def test_errors_by_kind_most_confident_first() -> None:
    predictions = from_report(report("holdout")).predictions
    everything = misclassified(predictions)
    assert everything["sentence"].tolist() == [ROWS[1][0], ROWS[3][0], ROWS[2][0]]
    assert everything["confidence"].tolist() == pytest.approx([0.83, 0.78, 0.61])
    positives = misclassified(predictions, "false_positive")
    assert positives["sentence"].tolist() == [ROWS[1][0], ROWS[2][0]]
    assert set(positives["label"]) == {0}
    assert misclassified(predictions, "false_negative")["sentence"].tolist() == [ROWS[3][0]]
    with pytest.raises(ValueError, match="kind"):
        misclassified(predictions, "true_positive")


def test_ordered_names() -> None:
    assert ordered_names({"zeta", "train", "alpha", "holdout"}) == ["holdout", "train", "alpha", "zeta"]
