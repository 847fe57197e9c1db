"""The MCC-calibrated decision threshold: chosen on validation, folded into the bias, kept by the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, matthews_corrcoef

from workbench.core.base.config import TrainConfig
from workbench.core.evaluation.calibration import TEMPERATURE_RANGE, calibrate_run
from workbench.core.evaluation.evaluate import evaluate_frame
from workbench.core.evaluation.threshold import (
    choose_threshold,
    final_linear,
    fold_threshold,
    model_threshold,
    original_probability,
    threshold_report,
)
from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.training.train import train

SENTENCES = [
    "The cat sat on the mat.",
    "Cat the mat on sat.",
    "Which book did you say that John read?",
    "John seems sleeping.",
    "The more you eat, the fatter you get.",
    "Him saw she.",
    "Bill is taller than Mary is.",
    "Run!",
    "What did you wonder whether he bought?",
    "Sally gave the book to Mary.",
    "The book was given Mary.",
    "I think that it rains.",
    "Books were read by the children.",
    "She laughed the joke.",
    "They have been eating.",
    "Every student who came left early.",
    "To whom did you give it?",
    "Who do you think that left?",
]


def p_acceptable(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(**batch).logits.double(), dim=-1)[:, 1].numpy()


def argmax_labels(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return model(**batch).logits.argmax(-1).numpy()


def random_batch(
    vocab_size: int, rows: int = 64, length: int = 12, seed: int = 0, first_id: int = 1000
) -> dict[str, torch.Tensor]:
    """Random token ids (from FIRST_ID on: past the special tokens) with a full attention mask."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(first_id, vocab_size, (rows, length), generator=generator),
        "attention_mask": torch.ones(rows, length, dtype=torch.long),
    }


def test_folding_makes_argmax_the_thresholded_decision(tiny_model_dir: Path) -> None:
    model = load_model(str(tiny_model_dir)).eval()
    batch = random_batch(model.config.vocab_size)
    before = p_acceptable(model, batch)
    threshold = float(np.quantile(before, 0.3))  # both labels on each side, away from 0.5
    assert abs(threshold - 0.5) > 1e-4
    expected = (before >= threshold).astype(int)
    assert 0 < expected.sum() < len(expected)
    assert fold_threshold(model, threshold) == pytest.approx(threshold)
    assert model.config.decision_threshold == pytest.approx(threshold)
    assert (argmax_labels(model, batch) == expected).all()
    # the folded model's probabilities map back to the original ones
    assert original_probability(p_acceptable(model, batch), threshold) == pytest.approx(before, abs=1e-6)


def test_folding_twice_composes_the_thresholds(tiny_model_dir: Path) -> None:
    model = load_model(str(tiny_model_dir)).eval()
    batch = random_batch(model.config.vocab_size, seed=1)
    before = p_acceptable(model, batch)
    fold_threshold(model, 0.4)
    total = fold_threshold(model, 0.7)
    # logit(total) = logit(0.4) + logit(0.7)
    assert np.log(total / (1 - total)) == pytest.approx(np.log(0.4 / 0.6) + np.log(0.7 / 0.3))
    assert original_probability(p_acceptable(model, batch), total) == pytest.approx(before, abs=1e-6)


def test_saved_folded_model_gives_the_same_labels_in_a_pipeline(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    model = load_model(str(tiny_model_dir)).eval()
    tokenizer = load_tokenizer(str(tiny_model_dir))
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    before = p_acceptable(model, batch)
    threshold = float(np.median(before))
    expected = ["acceptable" if p >= threshold else "unacceptable" for p in before]
    assert len(set(expected)) == 2
    fold_threshold(model, threshold)
    model.save_pretrained(tmp_path / "folded", safe_serialization=True)
    tokenizer.save_pretrained(tmp_path / "folded")
    assert json.loads((tmp_path / "folded" / "config.json").read_text())["decision_threshold"] == pytest.approx(
        threshold
    )
    classify = pipeline("text-classification", model=str(tmp_path / "folded"))
    assert [out["label"] for out in classify(SENTENCES)] == expected
    assert model_threshold(load_model(str(tmp_path / "folded"))) == pytest.approx(threshold)


@pytest.mark.parametrize("kind", ["roberta", "distilbert", "electra"])
def test_the_output_layer_is_found_in_other_heads(kind: str) -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.for_model(
        kind,
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        dim=16,
        n_layers=1,
        n_heads=2,
        hidden_dim=32,
        embedding_size=16,
        max_position_embeddings=40,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    expected = model.classifier if kind == "distilbert" else model.classifier.out_proj
    assert final_linear(model) is expected
    batch = random_batch(100, rows=40, length=6, seed=2, first_id=5)
    before = p_acceptable(model, batch)
    threshold = float(np.median(before))
    fold_threshold(model, threshold)
    assert (argmax_labels(model, batch) == (before >= threshold)).all()


def test_choose_threshold_finds_the_known_best() -> None:
    # every sentence above 0.5: at 0.5 the predictor is one-class (MCC 0); the data separate at 0.66
    p = [0.55, 0.60, 0.62, 0.70, 0.75, 0.80]
    labels = [0, 0, 0, 1, 1, 1]
    choice = choose_threshold(p, labels)
    assert choice.mcc_at_half == 0.0
    assert choice.threshold == pytest.approx(0.66)
    assert choice.mcc_at_threshold == pytest.approx(1.0)
    assert choice.n == 6


def test_ties_go_to_the_threshold_nearest_one_half() -> None:
    # 0.5 and the midpoint 0.525 give the same labels: a model already best at 0.5 keeps exactly 0.5
    choice = choose_threshold([0.2, 0.45, 0.6, 0.8], [0, 0, 1, 1])
    assert choice.threshold == 0.5 and choice.mcc_at_threshold == choice.mcc_at_half == pytest.approx(1.0)
    # 0.36 (one false positive) and 0.625 (one false negative) tie above 0.5's two errors: 0.625 is nearer
    p = [0.1, 0.3, 0.42, 0.55, 0.7, 0.9]
    labels = [0, 0, 1, 0, 1, 1]
    scores = {t: matthews_corrcoef(labels, [int(x >= t) for x in p]) for t in (0.36, 0.625, 0.5)}
    assert scores[0.36] == pytest.approx(scores[0.625]) and scores[0.36] > scores[0.5]
    assert choose_threshold(p, labels).threshold == pytest.approx(0.625)


def test_choose_threshold_matches_a_brute_force_search_with_sklearn() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    p = np.clip(0.62 + 0.08 * (labels - 0.5) + rng.normal(0, 0.1, 200), 0.001, 0.999).round(3)
    choice = choose_threshold(p, labels)
    grid = np.unique(p)
    best = max(matthews_corrcoef(labels, (p >= t).astype(int)) for t in grid)
    assert choice.mcc_at_threshold == pytest.approx(best)
    assert choice.mcc_at_threshold == pytest.approx(matthews_corrcoef(labels, (p >= choice.threshold).astype(int)))


def test_a_degenerate_predictor_with_signal_becomes_non_degenerate() -> None:
    """A 1-epoch model that says "acceptable" for everything at 0.5 but ranks sentences usefully."""
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.7).astype(int)
    p = 0.72 + 0.03 * labels + rng.normal(0, 0.02, 500)  # all above 0.5, weakly informative
    assert (p >= 0.5).all()
    choice = choose_threshold(p, labels)
    assert choice.mcc_at_half == 0.0
    assert choice.mcc_at_threshold > 0.3
    predicted = p >= choice.threshold
    assert 0 < predicted.sum() < len(predicted)


def test_threshold_report_gives_both_mccs_from_the_folded_probabilities() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    p = np.clip(0.6 + 0.1 * labels + rng.normal(0, 0.1, 300), 0.01, 0.99)
    t = 0.64
    folded = 1 / (1 + np.exp(-(np.log(p / (1 - p)) - np.log(t / (1 - t)))))  # what the folded model says
    report = threshold_report(folded, labels, t)
    assert report.mcc == pytest.approx(matthews_corrcoef(labels, (p >= t).astype(int)))
    assert report.mcc_at_half == pytest.approx(matthews_corrcoef(labels, (p >= 0.5).astype(int)))


def _run_folder(tiny_model_dir: Path, tmp_path: Path, data: Path | None = None) -> tuple[Path, TrainConfig]:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(tiny_model_dir, run / "model")
    config = TrainConfig(model=str(tiny_model_dir), data=str(data or ""), precision="fp32", eval_batch_size=256)
    config.save(run / "config.json")
    return run, config


def _badly_calibrated(run: Path, config: TrainConfig) -> None:
    """Make RUN's model badly calibrated, as calibration is for: the random head's log-odds (a spread of
    about 1e-4) stretched to a spread of 1 on validation and shifted 1.5 against acceptable, which its
    ranking (validation MCC about 0.1) does not warrant: the best-MCC threshold moves and T is far from 1."""
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import logits_for

    model = load_model(str(run / "model"))
    frame = load_cola(config.data or None, config.validation_fraction, config.split_seed)["validation"]
    logits = logits_for(model, load_tokenizer(str(run / "model")), frame["sentence"].tolist(), 128, 256)
    z = (logits[:, 1] - logits[:, 0]).astype(np.float64)
    stretch = 1.0 / z.std()
    layer = final_linear(model)
    with torch.no_grad():
        layer.weight.mul_(stretch)
        layer.bias.mul_(stretch)
        layer.bias[1] -= stretch * z.mean() + 1.5
    model.save_pretrained(run / "model", safe_serialization=True)


def test_calibrate_run_folds_the_validation_threshold_into_the_saved_model(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from workbench.core.data.cola import load_cola

    run, config = _run_folder(tiny_model_dir, tmp_path)
    _badly_calibrated(run, config)
    cola = load_cola(None, config.validation_fraction, config.split_seed)
    original = load_model(str(run / "model"))
    tokenizer = load_tokenizer(str(run / "model"))
    before = {
        name: evaluate_frame(original, tokenizer, cola[name], name, batch_size=256)
        for name in ("validation", "holdout")
    }
    choice = calibrate_run(run, config)
    assert choice is not None and choice.n == len(cola["validation"])
    assert choice.mcc_at_half == pytest.approx(before["validation"].mcc)
    # the chosen threshold is the best of every labelling of validation, by scikit-learn's MCC
    p_val = before["validation"].predictions["p_acceptable"].to_numpy(dtype=np.float64)
    y_val = before["validation"].predictions["label"].to_numpy()
    best = max(matthews_corrcoef(y_val, (p_val >= t).astype(int)) for t in np.unique(p_val))
    assert choice.mcc_at_threshold == pytest.approx(best) and choice.mcc_at_best_threshold == pytest.approx(best)
    # the temperature minimises scikit-learn's log-loss of the shipped probabilities on validation
    z_val = before["validation"].predictions.eval("logit_acceptable - logit_unacceptable").to_numpy(np.float64)
    shifted = z_val - np.log(choice.threshold / (1 - choice.threshold))

    def val_log_loss(temperature: float) -> float:
        return log_loss(y_val, 1 / (1 + np.exp(-shifted / temperature)), labels=[0, 1])

    low, high = TEMPERATURE_RANGE
    assert low < choice.temperature < high and choice.temperature > 2  # far too confident
    for neighbour in (choice.temperature * 1.05, choice.temperature / 1.05):
        assert val_log_loss(choice.temperature) <= val_log_loss(neighbour)
    assert choice.log_loss_after == pytest.approx(val_log_loss(choice.temperature), rel=1e-6)
    # shipped because it is no worse than the model as trained (here much better)
    as_trained = log_loss(y_val, p_val, labels=[0, 1])
    assert choice.choice == "threshold and temperature" and choice.threshold != 0.5
    assert choice.log_loss_before == pytest.approx(as_trained, rel=1e-5)
    assert val_log_loss(choice.temperature) < as_trained - 0.1

    folded = load_model(str(run / "model"))
    assert model_threshold(folded) == pytest.approx(choice.threshold)
    assert folded.config.calibration_temperature == pytest.approx(choice.temperature)
    saved = json.loads((run / "config.json").read_text())
    assert saved["decision_threshold"] == pytest.approx(choice.threshold)
    assert saved["temperature"] == pytest.approx(choice.temperature)
    assert TrainConfig.load(run / "config.json") == config  # the recipe still loads
    calibration = json.loads((run / "eval.json").read_text())["calibration"]
    assert calibration["dataset"] == "validation" and calibration["threshold"] == choice.threshold
    assert calibration["temperature"] == choice.temperature and "shipped" in calibration["scale"]
    assert calibration["choice"] == "threshold and temperature" and "log-loss" in calibration["reason"]
    assert [fit["choice"] for fit in calibration["candidates"]] == [
        "as trained",
        "temperature",
        "threshold and temperature",
    ]
    after = {
        name: evaluate_frame(folded, tokenizer, cola[name], name, batch_size=256) for name in ("validation", "holdout")
    }
    assert after["validation"].mcc == pytest.approx(choice.mcc_at_threshold)
    for name in ("validation", "holdout"):  # the report keeps the model's own 0.5 figure too
        assert after[name].threshold == pytest.approx(choice.threshold)
        assert after[name].mcc_at_half == pytest.approx(before[name].mcc, abs=1e-9)
        assert after[name].summary()["decision_threshold"] == pytest.approx(choice.threshold)
        assert after[name].summary()["temperature"] == pytest.approx(choice.temperature)
        original_p = before[name].predictions["p_acceptable"].to_numpy()
        # the decision at 0.5 on the shipped probabilities is the decision at t on the raw ones, every sentence
        assert (after[name].predictions["predicted"].to_numpy() == (original_p >= choice.threshold)).all()
        assert ((after[name].predictions["p_acceptable"].to_numpy() >= 0.5) == (original_p >= choice.threshold)).all()
        # and the raw probabilities are kept beside the shipped ones (to float32's precision on a head whose
        # weights were stretched 1e4 times)
        assert after[name].predictions["p_acceptable_raw"].to_numpy() == pytest.approx(original_p, abs=1e-4)


def test_calibration_off_leaves_the_run_alone(tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path) -> None:
    run, config = _run_folder(tiny_model_dir, tmp_path, tiny_cola_dir)
    config.calibrate_threshold = False
    weights = (run / "model" / "model.safetensors").read_bytes()
    assert calibrate_run(run, config) is None
    assert (run / "model" / "model.safetensors").read_bytes() == weights
    assert not (run / "eval.json").exists()


def test_calibrating_a_calibrated_model_again_changes_none_of_its_decisions(
    small_config: TrainConfig, tmp_path: Path
) -> None:
    """A run killed after the calibration was folded into model/ but before its checkpoint recorded
    it calibrates again on resume: a model that carries a calibration keeps it, bit for bit."""
    from workbench.core.evaluation.calibration import calibrate_run
    from workbench.core.evaluation.threshold import final_linear, model_threshold
    from workbench.core.model.loading import load_model

    small_config.epochs, small_config.calibrate_threshold = 1, False
    run = tmp_path / "run"
    assert train(small_config, run).status == "done"
    first = calibrate_run(run, small_config, enabled=True)
    assert first is not None and first.choice != "as trained", first  # a calibration that changes the model
    once = load_model(str(run / "model"))
    second = calibrate_run(run, small_config, enabled=True)
    assert second is not None and second.threshold == first.threshold
    assert second.temperature == first.temperature
    assert second.mcc_at_threshold == pytest.approx(first.mcc_at_threshold)
    assert (second.choice, second.reason, second.candidates) == (first.choice, first.reason, first.candidates)
    twice = load_model(str(run / "model"))
    assert torch.equal(final_linear(twice).bias, final_linear(once).bias)
    assert torch.equal(final_linear(twice).weight, final_linear(once).weight)
    assert model_threshold(twice) == pytest.approx(first.threshold, abs=1e-9)
