"""`workbench eval --phenomena`, `diff --phenomena`, `data map` and `pairs` (workbench/cli/learned.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers.recorded import write_annotated_run

from workbench.cli import main
from workbench.core.base.config import TrainConfig

REPO = Path(__file__).parents[2]


def mcc_by_hand(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The binary MCC of each row of Y against P, from its confusion counts: (TP TN - FP FN) over the square
    root of the four margins' product, 0 where a margin is empty (as scikit-learn)."""
    tp, tn = (y & p).sum(-1), (~y & ~p).sum(-1)
    fp, fn = (~y & p).sum(-1), (y & ~p).sum(-1)
    margins = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return np.where(margins > 0, (tp * tn - fp * fn) / np.sqrt(np.maximum(margins, 1)), 0.0)


def bootstrap_by_hand(
    labels: np.ndarray, a: np.ndarray, b: np.ndarray | None, column: int, resamples: int
) -> tuple[float, float]:
    """The documented interval done here by hand: RESAMPLES resamples of the sentences (with replacement,
    numpy's generator seeded [SEED, COLUMN]), the MCC of each (`mcc_by_hand`, checked against scikit-learn's
    on the first 50), and the 2.5th and 97.5th percentiles; with B, of MCC(B) - MCC(A) on the same resample
    (paired)."""
    from sklearn.metrics import matthews_corrcoef

    from workbench.core.evaluation.phenomena import SEED

    picks = np.random.default_rng([SEED, column]).integers(0, len(labels), size=(resamples, len(labels)))
    y = labels.astype(bool)[picks]
    scores = {name: mcc_by_hand(y, p.astype(bool)[picks]) for name, p in (("a", a), ("b", b)) if p is not None}
    for name, p in (("a", a), ("b", b)):
        for row, pick in enumerate(picks[:50] if p is not None else []):
            assert scores[name][row] == pytest.approx(matthews_corrcoef(labels[pick], p[pick]), abs=1e-12)
    values = scores["b"] - scores["a"] if b is not None else scores["a"]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def feature_rows(run: Path, major: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions recorded in RUN of the dev sentences with the major feature MAJOR, in_domain_dev
    then holdout, each in the annotation file's order (how the report lists them)."""
    from workbench.core.data.annotations import MAJOR_FEATURES, load_annotations, match_annotations

    annotations = load_annotations()
    column = list(MAJOR_FEATURES).index(major)
    labels, predicted = [], []
    for split, file in (("in_domain_dev", "predictions-in_domain_dev.tsv"), ("holdout", "predictions.tsv")):
        recorded = pd.read_csv(run / file, sep="\t", keep_default_na=False)
        match = match_annotations(annotations, split, recorded["sentence"].tolist())
        rows = match.dev_index[annotations.major()[match.annotation_index, column] == 1]
        labels.append(recorded["label"].to_numpy()[rows])
        predicted.append(recorded["predicted"].to_numpy()[rows])
    return np.concatenate(labels), np.concatenate(predicted)


def test_eval_and_diff_phenomena(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A right on 85% of sentences; B the same but for a third of the Question sentences, flipped. The
    intervals are the documented percentile bootstrap, done again here with scikit-learn."""
    from sklearn.metrics import matthews_corrcoef

    from workbench.core.data.annotations import MAJOR_FEATURES

    write_annotated_run(tmp_path / "a", noise=0.15)
    write_annotated_run(tmp_path / "b", flip_major="Question", noise=0.15, flip_share=1 / 3)
    assert main(["eval", "b", "--phenomena", "--json", "--runs", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["matched"] == {"in_domain_dev": 526, "holdout": 513}
    question = next(f for f in report["features"] if f["feature"] == "Question")
    labels, b = feature_rows(tmp_path / "b", "Question")
    _, a = feature_rows(tmp_path / "a", "Question")
    column = list(MAJOR_FEATURES).index("Question")
    assert question["n"] == len(labels) == 219 and question["mcc"] == pytest.approx(matthews_corrcoef(labels, b))
    assert (question["mcc_low"], question["mcc_high"]) == pytest.approx(
        bootstrap_by_hand(labels, b, None, column, report["resamples"]), abs=1e-12
    )
    assert question["mcc_high"] - question["mcc_low"] < 0.5  # an interval, not the resamples' whole range

    assert main(["eval", "a", "--phenomena", "--split", "holdout", "--runs", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "holdout, 513 annotated sentences" in text and "written otherwise" in text
    assert "lines 586, 730, 732" in text and max(len(line) for line in text.splitlines()) <= 80

    assert main(["diff", "a", "b", "--phenomena", "--split", "both", "--json", "--runs", str(tmp_path)]) == 0
    changes = {c["feature"]: c for c in json.loads(capsys.readouterr().out)["features"]}
    change = changes["Question"]
    delta = matthews_corrcoef(labels, b) - matthews_corrcoef(labels, a)
    low, high = bootstrap_by_hand(labels, a, b, column, 1000)
    assert (change["delta"], change["delta_low"], change["delta_high"]) == pytest.approx((delta, low, high), abs=1e-12)
    assert high < 0 and change["verdict"] == "B worse"
    assert changes["Simple"]["delta"] == 0.0 and changes["Simple"]["verdict"] == "same"  # B = A there
    assert main(["diff", "a", "b", "--phenomena", "--split", "both", "--runs", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.strip().startswith("Question"))
    assert f"{delta:+.3f}" in row and row.endswith("B worse")
    assert max(len(line) for line in text.splitlines()) <= 80


def test_phenomena_of_a_partial_dev_set_says_the_rest_is_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers.recorded import record

    from workbench.core.data.cola import load_cola

    dev = load_cola()["in_domain_dev"].head(60)
    record(
        tmp_path / "part",
        "in_domain_dev",
        list(zip(dev["sentence"], dev["label"], dev["label"], dev["label"].astype(float), dev["source"], strict=True)),
    )
    assert main(["eval", "part", "--phenomena", "--split", "in_domain_dev", "--runs", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "467 annotated sentences left out: not in the data evaluated at all" in " ".join(text.split())
    assert "written otherwise" not in text and "and 462 more" in text
    lines = text.splitlines()
    note = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("MCC with a 95%"))]
    assert len(note) <= 3, note  # a count and a few line numbers (it was 467 of them, over 60 lines)


def test_diff_phenomena_refuses_a_split_that_is_not_annotated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_annotated_run(tmp_path / "a")
    write_annotated_run(tmp_path / "b", flip_major="Question")
    for command in (["eval", "a"], ["diff", "a", "b"]):
        assert main([*command, "--phenomena", "--split", "validation", "--runs", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err == (
            "error: --phenomena: --split in_domain_dev, holdout or both, not validation (only the dev "
            "sets are annotated)\n"
        )


def test_phenomena_of_a_run_without_predictions_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["diff", "empty", "empty", "--phenomena", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no recorded evaluation on holdout" in err


def test_data_map_lists_regions_and_exports_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.core.runs.dynamics import TrainingDynamics
    from workbench.core.runs.lookup import load_run_data

    run = tmp_path / "mapped"
    run.mkdir()
    TrainConfig(train_limit=60).save(run / "config.json")
    labels = load_run_data(run)["train"]["label"].to_numpy()[:60]
    rng = np.random.default_rng(0)
    p_gold = rng.random((3, 60)).astype(np.float32)
    dynamics = TrainingDynamics(p_gold, labels.astype(np.int8))
    dynamics.save(run)
    assert main(["data", "map", "mapped", "--runs", str(tmp_path), "--csv", str(tmp_path / "map.csv")]) == 0
    table = pd.read_csv(tmp_path / "map.csv")
    assert len(table) == 60
    np.testing.assert_allclose(table["confidence"], p_gold.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(table["variability"], p_gold.std(axis=0), atol=1e-4)
    np.testing.assert_allclose(table["p_gold_epoch2"], p_gold[1], atol=1e-4)
    # the regions by the module's rule, computed here from p_gold: the most variable third (and varying) is
    # ambiguous; of the rest, mean p(gold) below 0.5 is hard, the others easy
    confidence, variability = p_gold.mean(axis=0), p_gold.std(axis=0)
    ambiguous = (variability >= np.quantile(variability, 2 / 3)) & (variability > 0)
    hard = np.flatnonzero(~ambiguous & (confidence < 0.5))
    assert 0 < len(hard) < 60
    assert main(["data", "map", "mapped", "--region", "hard", "--json", "--limit", "0", "--runs", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"] == 3 and sorted(r["row"] for r in out["rows"]) == hard.tolist()
    assert {r["region"] for r in out["rows"]} == {"hard"}
    assert out["regions"] == {
        "easy": 60 - len(hard) - int(ambiguous.sum()),
        "ambiguous": int(ambiguous.sum()),
        "hard": len(hard),
    }
    assert main(["data", "map", "mapped", "--region", "ambiguous", "--runs", str(tmp_path)]) == 0
    assert "ambiguous sentences" in capsys.readouterr().out


def strict_json(text: str) -> Any:
    """TEXT parsed as strict JSON: NaN and Infinity, which Python writes and strict parsers refuse, fail."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_data_map_of_a_stopped_run_has_no_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run stopped in its first epoch: the last 20 sentences were never reached. JSON says null and why;
    the text says 'not recorded'."""
    from workbench.core.runs.dynamics import TrainingDynamics
    from workbench.core.runs.lookup import load_run_data

    run = tmp_path / "stopped"
    run.mkdir()
    TrainConfig(train_limit=60).save(run / "config.json")
    labels = load_run_data(run)["train"]["label"].to_numpy()[:60]
    p_gold = np.full((3, 60), np.nan, dtype=np.float32)
    p_gold[0, :40] = np.random.default_rng(2).random(40)
    TrainingDynamics(p_gold, labels.astype(np.int8)).save(run)
    assert main(["data", "map", "stopped", "--json", "--limit", "0", "--runs", str(tmp_path)]) == 0
    out = strict_json(capsys.readouterr().out)
    missing = [r for r in out["rows"] if not r["recorded"]]
    assert sorted(r["row"] for r in missing) == list(range(40, 60))
    for r in missing:
        assert (r["confidence"], r["variability"], r["correctness"], r["region"]) == (None, None, None, None)
        assert r["why"].startswith("not recorded") and r["p_gold"] == [None]
    assert sum(out["regions"].values()) == 40
    assert main(["data", "map", "stopped", "--limit", "0", "--runs", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "nan" not in text and "not recorded 20" in text
    assert sum("not recorded" in line for line in text.splitlines()) == 21  # the counts line and 20 rows


def test_json_is_strict_wherever_a_number_is_not_finite() -> None:
    from workbench.cli.common import json_text

    text = json_text(
        {
            "mcc": float("nan"),
            "rows": [{"loss": float("inf")}, {"loss": np.float32("-inf")}],
            "n": 3,
            "p": np.float32(0.25),
        }
    )
    assert strict_json(text) == {
        "mcc": None,
        "rows": [{"loss": None}, {"loss": None}],
        "n": 3,
        "p": 0.25,
        "non_finite": {
            "mcc": "NaN, written as null",
            "rows[0].loss": "Infinity, written as null",
            "rows[1].loss": "-Infinity, written as null",
        },
    }
    assert strict_json(json_text({"n": 1})) == {"n": 1}  # nothing to say: no non_finite entry


def test_data_map_of_a_one_epoch_run_says_why_nothing_is_ambiguous(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.core.runs.dynamics import TrainingDynamics
    from workbench.core.runs.lookup import load_run_data

    run = tmp_path / "one"
    run.mkdir()
    TrainConfig(train_limit=40, epochs=1).save(run / "config.json")
    labels = load_run_data(run)["train"]["label"].to_numpy()[:40]
    p_gold = np.random.default_rng(1).random((1, 40)).astype(np.float32)
    TrainingDynamics(p_gold, labels.astype(np.int8)).save(run)
    assert main(["data", "map", "one", "--json", "--runs", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["regions"] == {
        "easy": int((p_gold[0] >= 0.5).sum()),
        "ambiguous": 0,
        "hard": int((p_gold[0] < 0.5).sum()),
    }
    assert main(["data", "map", "one", "--runs", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "1 epoch recorded" in text and "none is ambiguous" in text


def test_data_map_of_a_run_trained_before_maps_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old").mkdir()
    TrainConfig().save(tmp_path / "old" / "config.json")
    assert main(["data", "map", "old", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "training_dynamics.npz: no training map recorded" in err


def test_pairs_on_the_example_suite_and_a_bad_file(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    suite = REPO / "data" / "pairs" / "example.tsv"
    assert main(["pairs", str(tiny_model_dir), str(suite), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # each sentence scored alone by transformers, no batching, no code of ours
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    acceptable = model.config.label2id["acceptable"]

    def p_acceptable(sentence: str) -> float:
        with torch.no_grad():
            return float(torch.softmax(model(**tokenizer(sentence, return_tensors="pt")).logits[0], -1)[acceptable])

    pairs = pd.read_csv(suite, sep="\t")
    p_good = [p_acceptable(s) for s in pairs["good"]]
    p_bad = [p_acceptable(s) for s in pairs["bad"]]
    right = sum(g > b for g, b in zip(p_good, p_bad, strict=True))
    assert 0 < right < 42  # the random model gets some right and some wrong: the count says something
    assert (out["n"], out["right"], out["wrong"], out["not_separable"]) == (42, right, 42 - right, 0)
    assert out["accuracy"] == pytest.approx(right / 42)
    assert sum(f["n"] for f in out["fields"]) == 42 and sum(f["right"] for f in out["fields"]) == right
    for failed in out["failed"]:
        row = failed["line"] - 2  # the header is line 1
        assert (failed["good"], failed["bad"]) == (pairs["good"][row], pairs["bad"][row])
        assert (failed["p_good"], failed["p_bad"]) == pytest.approx((p_good[row], p_bad[row]), abs=1e-5)
    assert len(out["failed"]) == min(10, 42 - right)  # --limit's default
    assert main(["pairs", str(tiny_model_dir), str(suite), "--limit", "3"]) == 0
    text = capsys.readouterr().out
    assert "per paradigm" in text and max(len(line) for line in text.splitlines()) <= 80
    bad = tmp_path / "bad.tsv"
    bad.write_text("good\tbad\nA b.\tB a.\n\nC d.\tD c.\n", encoding="utf-8")
    assert main(["pairs", str(tiny_model_dir), str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {bad}:3: blank line"
