"""Likely label errors (core/explore/label_issues.py): the folds, cleanlab's ranking checked against cleanlab
called directly, the join with a map and the agreement counted by hand, and the saved file read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.core.explore.label_issues import (
    LabelIssuesError,
    agreement,
    assign_folds,
    label_issues,
    read_label_issues,
    read_out_of_fold,
    save_report,
    write_out_of_fold,
)


def _out_of_fold(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """N made-up sentences: p(acceptable) near the label for most, far from it for a known few."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.7).astype(int)
    p = np.where(labels == 1, rng.uniform(0.55, 0.99, n), rng.uniform(0.01, 0.45, n))
    wrong = rng.choice(n, size=n // 15, replace=False)
    p[wrong] = 1.0 - p[wrong]
    return pd.DataFrame(
        {
            "line": np.arange(1, n + 1) * 3,  # lines of a file, not row numbers
            "sentence": [f"sentence {i}." for i in range(n)],
            "label": labels,
            "fold": np.arange(n) % 5 + 1,
            "p_acceptable": p,
        }
    )


def test_the_folds_are_stratified_seeded_and_cover_every_sentence_once() -> None:
    labels = np.array([1] * 70 + [0] * 30)
    folds = assign_folds(labels, 5, seed=7)
    assert sorted(set(folds.tolist())) == [1, 2, 3, 4, 5]
    for fold in range(1, 6):  # 70 and 30 over 5 folds: 14 and 6 in each
        assert (labels[folds == fold] == 1).sum() == 14
        assert (labels[folds == fold] == 0).sum() == 6
    assert (assign_folds(labels, 5, seed=7) == folds).all()
    assert not (assign_folds(labels, 5, seed=8) == folds).all()


@pytest.mark.parametrize(
    ("folds", "labels", "said"),
    [
        (1, [0, 1] * 10, "at least 2"),
        (4, [1] * 10 + [0] * 3, "only 3 unacceptable sentences"),
        (2, [1] * 10, "only one label"),
    ],
)
def test_a_bad_number_of_folds_is_refused_in_words(folds: int, labels: list[int], said: str) -> None:
    with pytest.raises(LabelIssuesError, match=said):
        assign_folds(np.array(labels), folds, seed=0)


def test_the_ranking_is_cleanlabs_on_the_same_arrays() -> None:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    frame = _out_of_fold()
    labels, p = frame["label"].to_numpy(), frame["p_acceptable"].to_numpy()
    pred_probs = np.column_stack([1 - p, p])
    expected = find_label_issues(labels, pred_probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(labels, pred_probs)
    report = label_issues(frame, "g", 5)
    assert len(expected) >= 15  # the made-up errors are found: the comparison is not of two empty lists
    assert [issue.line for issue in report.issues] == frame["line"].to_numpy()[expected].tolist()
    assert [issue.rank for issue in report.issues] == list(range(1, len(expected) + 1))
    assert [issue.quality for issue in report.issues] == pytest.approx(quality[expected].tolist())
    given = np.where(labels == 1, p, 1 - p)
    assert [issue.p_label for issue in report.issues] == pytest.approx(given[expected].tolist())
    assert report.agreement is None and report.sentences == len(frame)


def _made_up_map(run_dir: Path) -> object:
    """A map of 8 training sentences (lines 10..80), by hand: regions, confidences, one not recorded."""
    from workbench.core.explore.cartography import TrainingMap
    from workbench.core.runs.dynamics import TrainingDynamics

    table = pd.DataFrame(
        {
            "row": range(8),
            "line": [10, 20, 30, 40, 50, 60, 70, 80],
            "sentence": ["s1.", "s2.", "s3.", "s4.", "s5.", "s6.", "other text.", "s8."],
            "label": [0, 1, 0, 1, 1, 0, 1, 1],
            "confidence": [0.1, 0.2, 0.9, 0.3, 0.8, 0.6, 0.1, np.nan],
            "variability": [0.0] * 7 + [np.nan],
            "correctness": [0.0] * 7 + [np.nan],
            "epochs": [3] * 7 + [0],
            "region": ["hard", "hard", "easy", "hard", "easy", "ambiguous", "hard", ""],
        }
    )
    return TrainingMap(run_dir, table, TrainingDynamics.empty(3, table["label"].tolist()))


def test_the_map_is_joined_by_line_and_the_agreement_counted_by_hand(tmp_path: Path) -> None:
    from workbench.core.explore.label_issues import map_beside

    training_map = _made_up_map(tmp_path / "mapped")
    frame = pd.DataFrame(
        {
            "line": [10, 20, 30, 40, 50, 60, 70, 80, 90],
            "sentence": ["s1.", "s2.", "s3.", "s4.", "s5.", "s6.", "s7.", "s8.", "s9."],
            "label": [0, 1, 0, 0, 1, 0, 1, 1, 0],
        }
    )
    regions, confidences = map_beside(frame, training_map)  # type: ignore[arg-type]
    # line 40: another label in the map; 70: another sentence; 80: not recorded; 90: not in the map
    assert regions == ["hard", "hard", "easy", "", "easy", "ambiguous", "", "", ""]
    assert confidences == [0.1, 0.2, 0.9, None, 0.8, 0.6, None, None, None]
    is_issue = np.array([True, False, True, True, False, True, True, False, True])
    counted = agreement(regions, is_issue, "mapped")
    # by hand: 5 mapped (10, 20, 30, 50, 60), 2 of them hard (10, 20); issues among them: 10, 30, 60
    assert (counted.mapped, counted.hard, counted.issues_mapped, counted.issues_in_hard) == (5, 2, 3, 1)
    assert counted.issues_by_region == {"easy": 1, "ambiguous": 1, "hard": 1, "not in the map": 3}
    assert counted.expected_in_hard == pytest.approx(3 * 2 / 5)
    text = "\n".join(counted.lines())
    assert "in the map's hard region: 1 of 3 (33%), by chance 1.2" in text and "cleanlab flags: 1 of 2" in text


def test_issues_carry_the_maps_region_and_count_it(tmp_path: Path) -> None:
    from cleanlab.filter import find_label_issues

    frame = _out_of_fold(n=200, seed=3)
    training_map = _made_up_map(tmp_path / "mapped")
    # the map's 8 sentences are the frame's rows at lines 10, 20, ...: give them those lines and texts
    table = training_map.table  # type: ignore[attr-defined]
    rows = [0, 1, 2, 3, 4, 5, 6, 7]
    frame.loc[rows, "line"] = table["line"].to_numpy()
    frame.loc[rows, "sentence"] = table["sentence"].to_numpy()
    frame.loc[rows, "label"] = table["label"].to_numpy()
    frame.loc[rows, "p_acceptable"] = [0.9, 0.1, 0.9, 0.1, 0.1, 0.9, 0.05, 0.5]  # 0..6 against their labels but 5
    labels, p = frame["label"].to_numpy(), frame["p_acceptable"].to_numpy()
    flagged = set(find_label_issues(labels, np.column_stack([1 - p, p])).nonzero()[0].tolist())
    report = label_issues(frame, "g", 5, training_map)  # type: ignore[arg-type]
    by_line = {issue.line: issue for issue in report.issues}
    assert by_line[10].region == "hard" and by_line[10].map_confidence == pytest.approx(0.1)
    hard_rows = [0, 1, 3, 6]  # the map's hard sentences, by hand
    joined = [0, 1, 2, 3, 4, 5, 6]  # recorded in the map
    together = report.agreement
    assert together is not None and together.map_run == "mapped"
    assert together.issues_in_hard == len(flagged & set(hard_rows))
    assert together.issues_mapped == len(flagged & set(joined))
    assert together.hard == 4 and together.mapped == 7


def test_saved_issues_read_back_from_the_file_the_group_or_the_runs_folder(tmp_path: Path) -> None:
    frame = _out_of_fold(n=120, seed=1)
    frame.loc[0, "sentence"] = "a tab\there, a \\ backslash"
    frame.loc[0, "p_acceptable"] = 1.0 - frame.loc[0, "label"]  # surely an issue
    group = tmp_path / "runs" / "issues"
    group.mkdir(parents=True)
    report = label_issues(frame, "issues", 5, _made_up_map(tmp_path / "m"))  # type: ignore[arg-type]
    saved = save_report(report, group)
    for where in (saved, group, tmp_path / "runs"):
        assert read_label_issues(where) == report.issues
    assert any(issue.sentence == "a tab\there, a \\ backslash" for issue in read_label_issues(saved))
    with pytest.raises(LabelIssuesError, match="no label_issues.tsv"):
        read_label_issues(tmp_path / "m")


def test_a_damaged_issues_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "label_issues.tsv"
    path.write_text(
        "rank\tline\tsentence\tlabel\tp_label\tquality\tfold\tregion\tmap_confidence\n"
        "1\t5\tx.\t0\tnot a number\t0.1\t1\t\t\n"
    )
    with pytest.raises(LabelIssuesError, match=r"label_issues.tsv:2:"):
        read_label_issues(path)


def test_the_out_of_fold_table_round_trips_with_what_is_not_predicted_yet(tmp_path: Path) -> None:
    frame = _out_of_fold(n=10)
    frame.loc[[2, 5], "p_acceptable"] = np.nan
    write_out_of_fold(tmp_path / "oof.tsv", frame)
    back = read_out_of_fold(tmp_path / "oof.tsv")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    with pytest.raises(LabelIssuesError, match="2 sentences have no out-of-fold probability"):
        label_issues(back, "g", 5)
