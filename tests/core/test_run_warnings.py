"""Warnings a person needs beside the figures: a model no better than the majority class (one core
function for the CLI and the TUI), runs validated on different splits side by side, and settings
printed to a readable precision."""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.metrics import accuracy_score, matthews_corrcoef

from workbench.core.base.config import TrainConfig, format_setting
from workbench.core.evaluation.evaluate import degenerate_warning
from workbench.core.runs.compare import compare_runs


def confusion_of(labels: list[int], predicted: list[int]) -> list[list[int]]:
    pairs = list(zip(labels, predicted, strict=True))
    return [[pairs.count((0, 0)), pairs.count((0, 1))], [pairs.count((1, 0)), pairs.count((1, 1))]]


def test_one_label_for_all_is_degenerate() -> None:
    assert "predicts 'acceptable' for every sentence" in degenerate_warning(confusion_of([0, 1, 1], [1, 1, 1]))


def test_worse_than_the_majority_class_is_degenerate() -> None:
    # the run: negative MCC, accuracy below the majority share (checked with scikit-learn)
    labels = [1] * 7 + [0] * 3
    predicted = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    assert matthews_corrcoef(labels, predicted) < 0
    assert accuracy_score(labels, predicted) < 0.7
    warning = degenerate_warning(confusion_of(labels, predicted))
    assert "worse than always answering 'acceptable'" in warning
    assert f"MCC {matthews_corrcoef(labels, predicted):.3f}" in warning
    assert f"accuracy {accuracy_score(labels, predicted):.3f} < 0.700" in warning


def test_a_model_that_learned_is_not_flagged() -> None:
    labels = [1, 1, 1, 1, 0, 0, 0, 1, 1, 0]
    predicted = [1, 1, 1, 0, 0, 0, 1, 1, 1, 0]
    assert matthews_corrcoef(labels, predicted) > 0 and accuracy_score(labels, predicted) >= 0.6
    assert degenerate_warning(confusion_of(labels, predicted)) == ""


def test_accuracy_below_the_majority_share_is_flagged_only_while_mcc_is_within_chance() -> None:
    """The MCC-chosen threshold trades accuracy for MCC: the 1-epoch default's holdout (516 sentences, 354
    acceptable) had MCC 0.109 at accuracy 0.616 < 0.686, a model that learned something (chance: 2/sqrt(516)
    = 0.088). The same accuracy with an MCC inside chance is flagged. Figures by scikit-learn."""
    learned = [1] * 200 + [0] * 154 + [1] * 44 + [0] * 118  # 354 acceptable then 162 unacceptable
    labels = [1] * 354 + [0] * 162
    mcc, accuracy = matthews_corrcoef(labels, learned), accuracy_score(labels, learned)
    assert mcc > 2 / 516**0.5 and accuracy < 354 / 516
    assert degenerate_warning(confusion_of(labels, learned)) == ""
    near_chance = [1] * 240 + [0] * 114 + [1] * 100 + [0] * 62
    mcc, accuracy = matthews_corrcoef(labels, near_chance), accuracy_score(labels, near_chance)
    assert 0 < mcc < 2 / 516**0.5 and accuracy < 354 / 516
    assert "worse than always answering 'acceptable'" in degenerate_warning(confusion_of(labels, near_chance))


def run_with(folder: Path, **settings: object) -> Path:
    folder.mkdir(parents=True)
    values = TrainConfig(**settings).to_dict()  # type: ignore[arg-type]
    values["decision_threshold"] = 0.6229968965053558
    (folder / "config.json").write_text(json.dumps(values), encoding="utf-8")
    return folder


def test_compare_warns_when_validation_splits_differ(tmp_path: Path) -> None:
    a = run_with(tmp_path / "a", split_seed=2018)
    b = run_with(tmp_path / "b", split_seed=7)
    c = run_with(tmp_path / "c", split_seed=2018, seed=3)
    (warning,) = compare_runs([a, b]).warnings()
    assert "different validation sets" in warning and "split_seed 7" in warning and "split_seed 2018" in warning
    assert compare_runs([a, c]).warnings() == []


def test_settings_read_to_six_significant_digits(tmp_path: Path) -> None:
    assert format_setting(0.6229968965053558) == "0.622997"
    assert [format_setting(v) for v in (1e-08, 0.0001, 2e-05, 1.0, 42, True, "auto")] == [
        "1e-08",
        "0.0001",
        "2e-05",
        "1.0",
        "42",
        "True",
        "auto",
    ]
    a = run_with(tmp_path / "a", learning_rate=0.00012345678)
    b = run_with(tmp_path / "b", learning_rate=0.0001)
    rows = dict(compare_runs([a, b]).rows())
    assert rows["learning_rate"] == ["0.000123457", "0.0001"]
