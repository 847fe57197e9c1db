"""Probabilities that mean what they say: the temperature fitted by log-loss, folded with the threshold
into the classifier (z' = (z - logit(t)) / T), the decision unchanged, ECE as the textbook computes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.metrics import matthews_corrcoef

from workbench.core.evaluation.calibration import (
    calibration_figures,
    choose_calibration,
    fit_temperature,
    log_loss,
)
from workbench.core.evaluation.slices import decide, evaluation_slices, reliability, threshold_curve
from workbench.core.evaluation.threshold import (
    final_linear,
    fold_threshold,
    model_temperature,
    model_threshold,
    raw_probability,
    set_calibration,
)
from workbench.core.model.loading import load_model


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def synthetic(temperature: float, n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from calibrated log-odds, and those log-odds made TEMPERATURE times too confident."""
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(0.8, 2.0, n)
    labels = (rng.random(n) < sigmoid(true_log_odds)).astype(int)
    return true_log_odds * temperature, labels


def test_log_loss_is_scikit_learns() -> None:
    z, y = synthetic(1.0, n=500)
    assert log_loss(z, y) == pytest.approx(sklearn_log_loss(y, sigmoid(z), labels=[0, 1]), rel=1e-9)
    assert log_loss(np.array([800.0, -800.0]), np.array([1, 0])) == pytest.approx(0.0)  # no overflow


@pytest.mark.parametrize("known", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_known_one(known: float) -> None:
    z, y = synthetic(known)
    fitted = fit_temperature(z, y)
    assert fitted == pytest.approx(known, rel=0.06)
    # and it is the minimum of scikit-learn's log-loss, not only of ours
    def loss(t: float) -> float:
        return sklearn_log_loss(y, sigmoid(z / t), labels=[0, 1])

    assert loss(fitted) <= min(loss(fitted * 1.02), loss(fitted / 1.02))


def test_the_shipped_decision_at_one_half_is_the_raw_decision_at_t_for_every_sentence() -> None:
    z, y = synthetic(2.0, n=3000, seed=4)
    z = z - 1.5  # a model biased against acceptable: the best threshold is well below 0.5
    calibration = choose_calibration(z, y)
    assert calibration.threshold < 0.48 and calibration.temperature == pytest.approx(2.0, rel=0.2)
    t, temperature = calibration.threshold, calibration.temperature
    shipped = sigmoid((z - np.log(t / (1 - t))) / temperature)
    assert ((shipped >= 0.5) == (sigmoid(z) >= t)).all()
    assert calibration.mcc_at_threshold == pytest.approx(matthews_corrcoef(y, (sigmoid(z) >= t).astype(int)))
    assert calibration.mcc_at_half == pytest.approx(matthews_corrcoef(y, (z >= 0).astype(int)))
    assert calibration.ece_after < calibration.ece_before
    assert raw_probability(shipped, t, temperature) == pytest.approx(sigmoid(z), abs=1e-9)


def test_ece_is_the_textbook_one() -> None:
    p = np.array([0.97, 0.92, 0.83, 0.28, 0.08, 0.56])
    labels = np.array([1, 0, 1, 0, 0, 1])
    # by hand, 10 bins of 0.05 over [0.5, 1]; confidence of the predicted label and whether it is right:
    # 0.97 right (bin .95-1), 0.92 wrong and 0.92 right (bin .90-.95: accuracy 0.5), 0.83 right (.80-.85),
    # 0.72 right (.70-.75), 0.56 right (.55-.60)
    by_hand = (abs(1 - 0.97) + 2 * abs(0.5 - 0.92) + abs(1 - 0.83) + abs(1 - 0.72) + abs(1 - 0.56)) / 6
    assert by_hand == pytest.approx(1.76 / 6)
    assert reliability(labels, p).ece == pytest.approx(by_hand)
    filled = [(b.n, round(b.accuracy, 6), round(b.mean_confidence, 6)) for b in reliability(labels, p).bins if b.n]
    assert filled == [(1, 1.0, 0.56), (1, 1.0, 0.72), (1, 1.0, 0.83), (2, 0.5, 0.92), (1, 1.0, 0.97)]


def test_decisions_are_p_at_least_t_everywhere() -> None:
    assert decide(np.array([0.5, 0.4999]), 0.5).tolist() == [1, 0]
    p = np.array([0.2, 0.3, 0.3, 0.5, 0.7, 0.9])
    y = np.array([0, 0, 1, 1, 0, 1])
    curve = threshold_curve(y, p, thresholds=[0.3, 0.5, 0.7])
    for t, mcc in zip(curve.thresholds, curve.mcc, strict=True):
        assert mcc == pytest.approx(matthews_corrcoef(y, (p >= t).astype(int))), t


def test_reliability_uses_the_recorded_labels_not_rounded_probabilities() -> None:
    """p(acceptable) 0.49996 is written as 0.5000; the model said unacceptable, rightly."""
    p = np.array([0.5, 0.9])
    labels = np.array([0, 1])
    recorded = np.array([0, 1])
    assert reliability(labels, p, predicted=recorded).bins[0].accuracy == 1.0
    frame = pd.DataFrame({"sentence": ["Him saw she.", "She saw him."], "label": labels, "predicted": recorded,
                          "p_acceptable": p})

    class Tokenizer:
        def __call__(self, sentences: list[str], **_: object) -> dict[str, list[list[int]]]:
            return {"input_ids": [[0] * 5 for _ in sentences]}

    slices = evaluation_slices(frame, Tokenizer())
    assert slices.reliability.ece == pytest.approx((abs(1 - 0.5) + abs(1 - 0.9)) / 2)
    assert slices.by_length[0].errors == 0  # both right, by the recorded labels


def test_folding_the_temperature_divides_the_log_odds_and_keeps_every_decision(tiny_model_dir: Path) -> None:
    model = load_model(str(tiny_model_dir)).eval()
    generator = torch.Generator().manual_seed(5)
    batch = {"input_ids": torch.randint(1000, model.config.vocab_size, (200, 10), generator=generator),
             "attention_mask": torch.ones(200, 10, dtype=torch.long)}

    def log_odds() -> np.ndarray:
        with torch.no_grad():
            logits = model(**batch).logits.double()
        return (logits[:, 1] - logits[:, 0]).numpy()

    raw = log_odds()
    t = float(sigmoid(np.quantile(raw, 0.4)))
    set_calibration(model, t, 0.25)
    assert model_threshold(model) == pytest.approx(t) and model_temperature(model) == 0.25
    shipped = log_odds()
    assert shipped == pytest.approx((raw - np.log(t / (1 - t))) / 0.25, abs=1e-4)
    with torch.no_grad():
        argmax = model(**batch).logits.argmax(-1).numpy()
    assert (argmax == (sigmoid(raw) >= t)).all() and 0 < argmax.sum() < len(argmax)
    # calibrating again starts from the model as trained; a later threshold composes with the temperature
    set_calibration(model, 0.5, 1.0)
    assert log_odds() == pytest.approx(raw, abs=1e-4)
    set_calibration(model, 0.3, 2.0)
    total = fold_threshold(model, 0.6)
    assert np.log(total / (1 - total)) == pytest.approx(np.log(0.3 / 0.7) + 2.0 * np.log(0.6 / 0.4))
    assert log_odds() == pytest.approx((raw - np.log(total / (1 - total))) / 2.0, abs=1e-4)
    assert final_linear(model).bias.dtype == torch.float32


def test_calibration_figures_of_a_folded_pair() -> None:
    z, y = synthetic(3.0, n=4000, seed=2)
    figures = calibration_figures(z, y, 0.5, 3.0)
    assert figures.log_loss_after == pytest.approx(sklearn_log_loss(y, sigmoid(z / 3.0), labels=[0, 1]))
    assert figures.ece_after < 0.03 < figures.ece_before  # known temperature: calibrated
