"""Model soups (core/search/soup.py): averaged weights, greedy choice, refusals, the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import matthews_corrcoef

from workbench.core.base.config import TrainConfig
from workbench.core.search.soup import SoupError, make_soup


def _make_run(runs: Path, name: str, model: Any, tokenizer_dir: Path, val_mcc: float, config: TrainConfig) -> Path:
    """A finished run folder made by hand: config.json, model/, and the epoch and end events."""
    folder = runs / name
    folder.mkdir(parents=True)
    config.save(folder / "config.json")
    model.save_pretrained(folder / "model", safe_serialization=True)
    shutil.copy(tokenizer_dir / "tokenizer.json", folder / "model")
    for extra in ("tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (tokenizer_dir / extra).is_file():
            shutil.copy(tokenizer_dir / extra, folder / "model")
    events = [
        {"kind": "start", "time": "2026-01-01T00:00:00", "run": name},
        {
            "kind": "epoch",
            "time": "2026-01-01T00:00:01",
            "epoch": 1,
            "step": 1,
            "train_loss": 0.6,
            "val_n": 855,
            "val_loss": 0.6,
            "val_accuracy": 0.7,
            "val_mcc": val_mcc,
            "best": True,
            "elapsed_s": 1.0,
        },
        {"kind": "end", "time": "2026-01-01T00:00:02", "status": "done"},
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return folder


def _load(folder: Path) -> Any:
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder)


def _validation_logits(model: Any, tokenizer_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of the validation split, computed here with transformers."""
    from transformers import AutoTokenizer

    from workbench.core.data.cola import load_cola

    frame = load_cola()["validation"]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model.eval()
    logits = []
    with torch.no_grad():
        sentences = frame["sentence"].tolist()
        for start in range(0, len(sentences), 256):
            batch = tokenizer(
                sentences[start : start + 256], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            logits.append(model(**batch).logits.numpy())
    return np.concatenate(logits), frame["label"].to_numpy()


def _validation_mcc(model: Any, tokenizer_dir: Path) -> float:
    """Validation MCC at argmax, with sklearn."""
    logits, labels = _validation_logits(model, tokenizer_dir)
    return float(matthews_corrcoef(labels, logits.argmax(-1)))


@pytest.fixture(scope="module")
def separating_model(tiny_model_dir: Path) -> tuple[Any, float]:
    """The tiny random BERT with its classifier turned so that its validation MCC is > 0, and that MCC:
    the acceptable logit's bias moved so that half the sentences fall on each side, then the classifier
    negated if that MCC is below 0."""
    model = _load(tiny_model_dir)
    logits, _ = _validation_logits(model, tiny_model_dir)
    difference = logits[:, 1] - logits[:, 0]
    with torch.no_grad():
        model.classifier.bias[1] -= float(np.median(difference)) + 1e-4
    mcc = _validation_mcc(model, tiny_model_dir)
    if mcc < 0:
        with torch.no_grad():
            model.classifier.weight.neg_()
            model.classifier.bias.neg_()
        mcc = _validation_mcc(model, tiny_model_dir)
    assert mcc > 0.0, "the construction needs a member that separates the classes a little"
    return model, mcc


def _config(tiny_model_dir: Path, **changes: Any) -> TrainConfig:
    return TrainConfig(model=str(tiny_model_dir), precision="fp32", eval_batch_size=256, **changes)


def test_uniform_soup_is_the_average_of_the_unfolded_weights_and_loads_in_a_pipeline(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import pipeline

    from workbench.core.evaluation.threshold import fold_threshold
    from workbench.core.runs.status import run_info

    runs = tmp_path / "runs"
    first = _load(tiny_model_dir)
    second = _load(tiny_model_dir)
    torch.manual_seed(3)
    with torch.no_grad():
        for param in second.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    originals = [{k: v.clone() for k, v in m.state_dict().items()} for m in (first, second)]
    fold_threshold(second, 0.3)  # as calibration leaves a run's model: the threshold in the bias
    assert not torch.equal(second.classifier.bias, originals[1]["classifier.bias"])
    _make_run(runs, "a", first, tiny_model_dir, 0.2, _config(tiny_model_dir, seed=1, head_seed=7))
    _make_run(runs, "b", second, tiny_model_dir, 0.1, _config(tiny_model_dir, seed=2, head_seed=7))

    result = make_soup(runs, ["a", "b"], "soup")

    assert result.kept == ["a", "b"]
    soup = _load(runs / "soup" / "model")
    threshold = float(soup.config.decision_threshold)  # the soup's own, chosen on validation
    temperature = float(getattr(soup.config, "calibration_temperature", 1.0))  # folded with t since calibration
    state = soup.state_dict()
    with torch.no_grad():  # undo the soup's fold by hand: the classifier times T, then bias[acceptable] + logit(t)
        state["classifier.weight"] *= temperature
        state["classifier.bias"] *= temperature
        state["classifier.bias"][1] += math.log(threshold / (1 - threshold))
    for key, value in state.items():
        expected = (originals[0][key].double() + originals[1][key].double()) / 2
        if value.is_floating_point():
            torch.testing.assert_close(value.double(), expected, rtol=0, atol=1e-6)
        else:
            assert torch.equal(value, originals[0][key])
    report = json.loads((runs / "soup" / "eval.json").read_text())
    assert {"validation", "in_domain_dev", "holdout", "calibration"} <= set(report)
    assert run_info(runs / "soup").status == "done"
    assert run_info(runs / "soup").holdout_mcc == report["holdout"]["mcc"]
    # the runs table: a soup of 2 (no epoch trained), its validation MCC at p >= 0.5 by scikit-learn from the
    # soup's own validation predictions, and when it was made
    info = run_info(runs / "soup")
    assert info.epochs_text == "soup×2" and info.started
    validation = pd.read_csv(runs / "soup" / "predictions-validation.tsv", sep="\t")
    assert info.best_val_mcc == pytest.approx(
        matthews_corrcoef(validation["label"], (validation["p_acceptable_raw"] >= 0.5).astype(int)), abs=1e-9
    )
    saved = json.loads((runs / "soup" / "config.json").read_text())
    assert saved["extra"]["soup"]["member_thresholds"] == {"a": 0.5, "b": pytest.approx(0.3)}
    classify = pipeline("text-classification", model=str(runs / "soup" / "model"))
    assert classify(["The cat sat on the mat."])[0]["label"] in ("acceptable", "unacceptable")


def test_greedy_soup_keeps_a_member_only_when_it_does_not_lower_validation_mcc(
    separating_model: tuple[Any, float], tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A (MCC m > 0), C = a copy of A (soup unchanged: kept), B = A with its classifier times -2
    (with A and C the classifier averages to 0: every sentence one class, MCC 0 < m: dropped)."""
    model, mcc = separating_model
    runs = tmp_path / "runs"
    config = _config(tiny_model_dir)
    _make_run(runs, "a", model, tiny_model_dir, mcc, config)
    _make_run(runs, "c", model, tiny_model_dir, mcc - 1e-3, config)
    spoiler = _load(tiny_model_dir)
    spoiler.load_state_dict(model.state_dict())
    with torch.no_grad():
        spoiler.classifier.weight.mul_(-2.0)
        spoiler.classifier.bias.mul_(-2.0)
    _make_run(runs, "b", spoiler, tiny_model_dir, -mcc, config)

    greedy = make_soup(runs, ["b", "a", "c"], "greedy", greedy=True)
    assert greedy.members == ["a", "c", "b"]  # best on validation first
    assert greedy.kept == ["a", "c"]
    assert [kept for _, _, kept in greedy.val_mcc_steps] == [True, True, False]
    assert greedy.val_mcc_steps[0][1] == pytest.approx(mcc, abs=1e-9)
    assert greedy.val_mcc_steps[2][1] == 0.0
    soup = _load(runs / "greedy" / "model")
    threshold = float(soup.config.decision_threshold)
    temperature = float(getattr(soup.config, "calibration_temperature", 1.0))
    with torch.no_grad():
        soup.classifier.weight *= temperature
        soup.classifier.bias *= temperature
        soup.classifier.bias[1] += math.log(threshold / (1 - threshold))
    for key, value in soup.state_dict().items():
        torch.testing.assert_close(value, model.state_dict()[key], rtol=0, atol=1e-6)

    uniform = make_soup(runs, ["a", "b", "c"], "uniform")
    assert uniform.kept == ["a", "c", "b"]
    assert torch.count_nonzero(_load(runs / "uniform" / "model").classifier.weight) == 0


def test_members_of_another_architecture_or_head_init_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    runs = tmp_path / "runs"
    model = _load(tiny_model_dir)
    _make_run(runs, "a", model, tiny_model_dir, 0.1, _config(tiny_model_dir, seed=1))
    _make_run(runs, "other-seed", model, tiny_model_dir, 0.1, _config(tiny_model_dir, seed=2))
    wider = BertForSequenceClassification(BertConfig(**{**model.config.to_dict(), "intermediate_size": 96}))
    _make_run(runs, "wider", wider, tiny_model_dir, 0.1, _config(tiny_model_dir, seed=1))

    with pytest.raises(
        SoupError,
        match=r"^other-seed: its classifier head was initialised with seed 2, a's "
        r"with 1; .*--head-seed",
    ):
        make_soup(runs, ["a", "other-seed"], "s1")
    with pytest.raises(SoupError, match=r"^wider: tensor '.*intermediate.dense.weight' is \(96, 32\)"):
        make_soup(runs, ["a", "wider"], "s2")
    with pytest.raises(SoupError, match="at least two"):
        make_soup(runs, ["a"], "s3")
    assert not (runs / "s1").exists() and not (runs / "s2").exists()
    with pytest.raises(SoupError, match="given twice"):
        make_soup(runs, ["a", "a"], "s4")


def test_soup_cli_writes_a_run_that_eval_reads(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli import main

    runs = tmp_path / "runs"
    model = _load(tiny_model_dir)
    for name in ("a", "b"):
        _make_run(runs, name, model, tiny_model_dir, 0.1, _config(tiny_model_dir))
    assert main(["soup", "a", "b", "--name", "both", "--greedy", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "soup both: greedy average of 2 of 2 member(s): a, b" in out
    assert main(["eval", "both", "--split", "holdout", "--runs", str(runs)]) == 0
    assert main(["soup", "a", "b", "--name", "both", "--runs", str(runs)]) != 0
    assert "already exists" in capsys.readouterr().err
