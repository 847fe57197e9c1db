"""MCC per grammatical feature of the annotated CoLA dev sets (core/evaluation/phenomena.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.recorded import write_annotated_run
from sklearn.metrics import matthews_corrcoef

from workbench.core.data.annotations import (
    ABSENT,
    ANNOTATIONS_FILE,
    WRITTEN_OTHERWISE,
    load_annotations,
    match_annotations,
)
from workbench.core.data.cola import DataError, load_cola
from workbench.core.evaluation.phenomena import (
    PhenomenaReport,
    PhenomenonScore,
    bootstrap_mcc,
    compare_phenomena,
    phenomena_from_predictions,
    recorded_phenomena,
    score_features,
)


def test_per_feature_mcc_is_the_hand_computed_value() -> None:
    #                  s0 s1 s2 s3 s4 s5 s6 s7 s8 s9
    labels = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1])
    predicted = np.array([1, 0, 0, 1, 1, 1, 0, 0, 1, 1])
    features = np.zeros((10, 4), dtype=int)
    features[[0, 1], 0] = 1  # all right, both classes: MCC 1
    features[[2, 3], 1] = 1  # all wrong, both classes: MCC -1
    features[[0, 4, 5], 2] = 1  # one gold class only: MCC 0 by convention, marked
    features[[4, 5, 6, 7, 8, 9], 3] = 1  # tp 3 (4, 5, 9), tn 1 (6), fp 1 (8), fn 1 (7)
    scores = score_features(labels, predicted, features, ["right", "wrong", "one", "mixed"], resamples=200)
    by_name = {s.feature: s for s in scores}
    assert by_name["right"].mcc == 1.0 and by_name["right"].accuracy == 1.0
    assert by_name["wrong"].mcc == -1.0 and by_name["wrong"].accuracy == 0.0
    assert by_name["one"].one_class and by_name["one"].mcc == 0.0 and not by_name["mixed"].one_class
    hand = (3 * 1 - 1 * 1) / np.sqrt((3 + 1) * (3 + 1) * (1 + 1) * (1 + 1))  # (tp tn - fp fn) / sqrt(...) = 0.5
    assert by_name["mixed"].mcc == pytest.approx(hand)
    assert by_name["mixed"].n == 6 and by_name["mixed"].accuracy == pytest.approx(4 / 6)
    assert by_name["mixed"].mcc_low <= by_name["mixed"].mcc <= by_name["mixed"].mcc_high


def test_mcc_and_bootstrap_agree_with_sklearn() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    predicted = np.where(rng.random(300) < 0.7, labels, 1 - labels)
    features = np.ones((300, 1), dtype=int)
    score = score_features(labels, predicted, features, ["all"], resamples=50)[0]
    assert score.mcc == pytest.approx(matthews_corrcoef(labels, predicted))
    # each bootstrap value is sklearn's MCC of the same resample
    picks = np.random.default_rng(7).integers(0, 300, size=(20, 300))
    values = bootstrap_mcc(labels, predicted, 20, np.random.default_rng(7))
    expected = [matthews_corrcoef(labels[p], predicted[p]) for p in picks]
    assert values == pytest.approx(expected)


def test_the_shipped_annotations_match_the_shipped_dev_sets_sentence_for_sentence() -> None:
    annotations = load_annotations()
    assert len(annotations.rows) == 1043 and annotations.minor.shape == (1043, 63)
    cola = load_cola()
    dev = match_annotations(annotations, "in_domain_dev", cola["in_domain_dev"]["sentence"].tolist())
    holdout = match_annotations(annotations, "holdout", cola["holdout"]["sentence"].tolist())
    assert (dev.matched, holdout.matched) == (526, 513)  # 1039 of 1043
    # the other 4 are transcribed otherwise there: "1 gave" for "I gave", a stray comma (twice), a longer sentence
    assert dev.unmatched["line"].tolist() == [331]
    assert holdout.unmatched["line"].tolist() == [586, 730, 732]
    assert dev.unmatched["sentence"].iloc[0].startswith("1 gave Mary")
    # each is written otherwise, and its data sentence is the one it stands for
    for match in (dev, holdout):
        assert (match.unmatched["reason"] == WRITTEN_OTHERWISE).all()
    assert dev.unmatched["in_data"].iloc[0] == "I gave Mary after the party a book."
    assert holdout.unmatched["in_data"].iloc[1] == "Which book's author did you meet?"
    sentences = cola["holdout"]["sentence"].to_numpy()
    assert (sentences[holdout.dev_index] == annotations.rows["sentence"].to_numpy()[holdout.annotation_index]).all()


def test_recorded_predictions_give_phenomena_and_a_two_run_view(tmp_path: Path) -> None:
    write_annotated_run(tmp_path / "a")
    write_annotated_run(tmp_path / "b", flip_major="Question")
    a = recorded_phenomena(
        tmp_path / "a",
        "both",
    )
    b = recorded_phenomena(tmp_path / "b", "both")
    assert a.matched == {"in_domain_dev": 526, "holdout": 513}
    assert all(s.mcc == 1.0 for s in a.scores if not s.one_class and s.n)
    # 222 annotated, 3 of them among the 4 unmatched ("Which book's, author...", twice, and the longer one)
    assert b.score("Question").mcc == -1.0 and b.score("Question").n == 219
    changes = {c.feature: c for c in compare_phenomena(a, b, resamples=200)}
    assert changes["Question"].verdict == "B worse" and changes["Question"].delta == -2.0
    assert changes["Imperative"].verdict in ("unclear", "one class", "B worse")
    one = recorded_phenomena(tmp_path / "a", "in_domain_dev")
    assert one.matched == {"in_domain_dev": 526} and len(one.table) == 526


def test_a_run_without_recorded_predictions_says_which(tmp_path: Path) -> None:
    from workbench.core.base.layout import RunError

    (tmp_path / "r").mkdir()
    with pytest.raises(RunError, match="no recorded evaluation on in_domain_dev"):
        recorded_phenomena(tmp_path / "r", "both")


def test_a_bad_annotation_file_is_named_with_its_line(tmp_path: Path) -> None:
    shipped = load_annotations().path.read_text(encoding="utf-8").split("\n")
    bad = tmp_path / ANNOTATIONS_FILE
    bad.write_text("\n".join(shipped[:3] + [shipped[3].replace("\t0\t", "\tx\t", 1)] + shipped[4:]), encoding="utf-8")
    with pytest.raises(DataError, match=rf"{ANNOTATIONS_FILE}:4: .*is not 0 or 1"):
        load_annotations(bad)
    bad.write_text("Source\tDomain\tSentence\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{ANNOTATIONS_FILE}:1: not the CoLA grammatical annotation header"):
        load_annotations(bad)
    bad.write_text("\n".join(shipped[:3] + [""] + shipped[3:]), encoding="utf-8")
    with pytest.raises(DataError, match=rf"{ANNOTATIONS_FILE}:4: blank line"):
        load_annotations(bad)
    frame = pd.DataFrame({"sentence": ["Nothing here matches."], "label": [1], "predicted": [1], "p_acceptable": [0.9]})
    with pytest.raises(DataError, match="no annotated sentence of holdout"):
        phenomena_from_predictions({"holdout": frame})


def test_a_partial_dev_set_says_its_annotated_sentences_are_absent_not_written_otherwise() -> None:
    """The first 60 sentences of in_domain_dev: the other 467 annotated ones are not in the data at all."""
    frame = load_cola()["in_domain_dev"].head(60)
    predictions = frame.assign(predicted=frame["label"], p_acceptable=frame["label"].astype(float))
    report = phenomena_from_predictions({"in_domain_dev": predictions})
    # by pandas alone: the annotation file's In rows whose sentence is not among the 60
    raw = pd.read_csv(load_annotations().path, sep="\t", quoting=3, dtype=str, keep_default_na=False)
    raw["line"] = np.arange(2, len(raw) + 2)
    missing = raw[(raw["Domain"] == "In") & ~raw["Sentence"].str.strip().isin(set(frame["sentence"].str.strip()))]
    assert len(missing) == 467
    assert [row["line"] for row in report.left_out(ABSENT)] == missing["line"].tolist()
    assert report.left_out(WRITTEN_OTHERWISE) == [] and report.matched == {"in_domain_dev": 60}
    assert report.to_dict()["absent"] == 467 and report.to_dict()["written_otherwise"] == 0


# ---------------------------------------------------------------- the intervals, against scipy


def mcc_along(labels: np.ndarray, predicted: np.ndarray, axis: int = -1) -> np.ndarray:
    """The textbook MCC along AXIS, 0 where a margin is empty."""
    y, p = labels.astype(bool), predicted.astype(bool)
    tp, tn = (y & p).sum(axis), (~y & ~p).sum(axis)
    fp, fn = (~y & p).sum(axis), (y & ~p).sum(axis)
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn).astype(float))
    return np.where(denominator > 0, (tp * tn - fp * fn) / np.where(denominator > 0, denominator, 1), 0.0)


def two_models(n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, model A (75% right) and model B: A with 25 of its errors fixed. Their predictions agree on
    all the other sentences, so pairing the resamples narrows the interval of B - A a lot."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.75, labels, 1 - labels)
    b = a.copy()
    fixed = rng.choice(np.flatnonzero(a != labels), 25, replace=False)
    b[fixed] = labels[fixed]
    return labels, a, b


RESAMPLES_SCIPY = 20_000  # both sides: their percentiles then agree to about 0.003


def test_a_features_interval_is_scipys_percentile_bootstrap() -> None:
    from scipy.stats import bootstrap

    labels, a, _ = two_models()
    (score,) = score_features(labels, a, np.ones((len(labels), 1), dtype=int), ["all"], resamples=RESAMPLES_SCIPY)
    theirs = bootstrap(
        (labels, a),
        mcc_along,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES_SCIPY,
        method="percentile",
        random_state=np.random.default_rng(1),
    ).confidence_interval
    assert (score.mcc_low, score.mcc_high) == pytest.approx((theirs.low, theirs.high), abs=0.01)
    assert score.mcc == pytest.approx(matthews_corrcoef(labels, a))


def test_the_interval_of_b_minus_a_is_scipys_paired_bootstrap() -> None:
    from scipy.stats import bootstrap

    labels, a, b = two_models()
    n = len(labels)

    def report(predicted: np.ndarray) -> PhenomenaReport:
        table = pd.DataFrame({"sentence": [f"s{i}" for i in range(n)], "label": labels, "predicted": predicted})
        score = PhenomenonScore("all", "major", "all", n, int(labels.sum()), 0.0, 0.0, 0.0, 0.0, False)
        return PhenomenaReport("holdout", [score], table, {"all": np.arange(n)}, {"holdout": n}, [], "")

    (change,) = compare_phenomena(report(a), report(b), resamples=RESAMPLES_SCIPY)
    theirs = bootstrap(
        (labels, a, b),
        lambda y, pa, pb, axis=-1: mcc_along(y, pb, axis) - mcc_along(y, pa, axis),
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES_SCIPY,
        method="percentile",
        random_state=np.random.default_rng(1),
    ).confidence_interval
    assert (change.delta_low, change.delta_high) == pytest.approx((theirs.low, theirs.high), abs=0.01)
    assert change.delta == pytest.approx(matthews_corrcoef(labels, b) - matthews_corrcoef(labels, a))
    assert change.verdict == ("B better" if theirs.low > 0 else "unclear") == "B better"
