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
    frame = pd.DataFrame(
        {"sentence": ["Him saw she.", "She saw him."], "label": labels, "predicted": recorded, "p_acceptable": p}
    )

    class Tokenizer:
        def __call__(self, sentences: list[str], **_: object) -> dict[str, list[list[int]]]:
            return {"input_ids": [[0] * 5 for _ in sentences]}

    slices = evaluation_slices(frame, Tokenizer())
    assert slices.reliability.ece == pytest.approx((abs(1 - 0.5) + abs(1 - 0.9)) / 2)
    assert slices.by_length[0].errors == 0  # both right, by the recorded labels


def test_folding_the_temperature_divides_the_log_odds_and_keeps_every_decision(tiny_model_dir: Path) -> None:
    model = load_model(str(tiny_model_dir)).eval()
    generator = torch.Generator().manual_seed(5)
    batch = {
        "input_ids": torch.randint(1000, model.config.vocab_size, (200, 10), generator=generator),
        "attention_mask": torch.ones(200, 10, dtype=torch.long),
    }

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


# ---------------------------------------------------------------- never worse than the model as trained


def calibrated(seed: int, n: int = 855) -> tuple[np.ndarray, np.ndarray]:
    """A model already calibrated (labels drawn from its own p), about 70% acceptable as in CoLA, on a
    validation split of CoLA's size."""
    rng = np.random.default_rng(seed)
    log_odds = rng.normal(1.2, 1.5, n)
    return log_odds, (rng.random(n) < sigmoid(log_odds)).astype(int)


def best_mcc_threshold(z: np.ndarray, y: np.ndarray) -> float:
    """By brute force: the threshold on sigmoid(z) of best MCC among 0.5 and the midpoints between distinct
    probabilities, the one nearest 0.5 among ties (every candidate's labelling at once, the textbook MCC,
    the best checked with scikit-learn)."""
    p = sigmoid(z)
    unique = np.unique(p)
    candidates = np.concatenate([[0.5], (unique[:-1] + unique[1:]) / 2])
    said = p[None, :] >= candidates[:, None]  # candidates x sentences
    gold = y.astype(bool)[None, :]
    tp, tn = (said & gold).sum(1), (~said & ~gold).sum(1)
    fp, fn = (said & ~gold).sum(1), (~said & gold).sum(1)
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn).astype(float))
    scores = np.where(denominator > 0, (tp * tn - fp * fn) / np.where(denominator > 0, denominator, 1), 0.0)
    tied = candidates[scores >= scores.max() - 1e-12]
    best = float(tied[np.argmin(np.abs(tied - 0.5))])
    assert matthews_corrcoef(y, (p >= best).astype(int)) == pytest.approx(scores.max())
    return best


def best_temperature_loss(shifted: np.ndarray, y: np.ndarray) -> float:
    """The least log-loss of sigmoid(SHIFTED / T) over a fine grid of T in [0.05, 20] (the textbook
    -mean(y log p + (1 - y) log(1 - p)) on every T at once; the best checked with scikit-learn)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 4001))
    p = np.clip(sigmoid(shifted[None, :] / grid[:, None]), 1e-15, 1 - 1e-15)
    losses = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1)
    best = int(np.argmin(losses))
    assert sklearn_log_loss(y, p[best], labels=[0, 1]) == pytest.approx(losses[best], rel=1e-9)
    return float(losses[best])


def textbook_ece(y: np.ndarray, p: np.ndarray) -> float:
    """ECE over 10 equal bins of the predicted label's confidence in [0.5, 1], the label p >= 0.5."""
    predicted = (p >= 0.5).astype(int)
    confidence = np.where(predicted == 1, p, 1 - p)
    right = predicted == y
    index = np.minimum(((confidence - 0.5) / 0.05).astype(int), 9)
    return float(
        sum(
            abs(right[index == b].mean() - confidence[index == b].mean()) * (index == b).sum()
            for b in range(10)
            if (index == b).any()
        )
        / len(y)
    )


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_calibration_never_makes_an_already_calibrated_model_worse(seed: int) -> None:
    """The fold through the MCC threshold cannot be the identity: on a calibrated model it raised log-loss
    (here 0.471 -> 0.483, 0.479 -> 0.503, 0.478 -> 0.574), and was shipped all the same."""
    z, y = calibrated(seed)
    before = sklearn_log_loss(y, sigmoid(z), labels=[0, 1])
    t = best_mcc_threshold(z, y)
    assert t != 0.5
    through_t = best_temperature_loss(z - np.log(t / (1 - t)), y)
    assert through_t > before + 0.005  # the fold that keeps the MCC decision is worse, whatever T
    calibration = choose_calibration(z, y)
    shipped = sigmoid((z - np.log(calibration.threshold / (1 - calibration.threshold))) / calibration.temperature)
    after = sklearn_log_loss(y, shipped, labels=[0, 1])
    assert after <= before
    assert calibration.log_loss_after == pytest.approx(after, rel=1e-9)
    # the decision stays the model's own (p >= 0.5) and only the temperature is folded, at its best
    assert calibration.choice == "temperature" and calibration.threshold == 0.5
    assert after == pytest.approx(best_temperature_loss(z, y), abs=1e-6)
    assert calibration.best_mcc_threshold == pytest.approx(t)
    assert calibration.mcc_at_threshold == pytest.approx(matthews_corrcoef(y, (z >= 0).astype(int)))
    assert calibration.mcc_at_best_threshold == pytest.approx(matthews_corrcoef(y, (sigmoid(z) >= t).astype(int)))
    assert calibration.ece_after == pytest.approx(textbook_ece(y, shipped))
    assert "log-loss worse" in calibration.reason and "decision stays at 0.5" in calibration.summary()
    fits = {fit["choice"]: fit for fit in calibration.candidates}
    assert fits["as trained"]["log_loss"] == pytest.approx(before)
    assert fits["threshold and temperature"]["log_loss"] == pytest.approx(through_t, abs=1e-6)


def test_calibration_of_an_overconfident_biased_model_folds_the_threshold_and_improves_it() -> None:
    z, y = synthetic(3.0, n=2000, seed=6)
    z = z - 2.0  # three times too confident and biased against acceptable
    before = sklearn_log_loss(y, sigmoid(z), labels=[0, 1])
    t = best_mcc_threshold(z, y)
    calibration = choose_calibration(z, y)
    assert calibration.choice == "threshold and temperature"
    assert calibration.threshold == pytest.approx(t) and t < 0.45
    assert calibration.temperature == pytest.approx(3.0, rel=0.1)
    shipped = sigmoid((z - np.log(t / (1 - t))) / calibration.temperature)
    after = sklearn_log_loss(y, shipped, labels=[0, 1])
    assert after == pytest.approx(best_temperature_loss(z - np.log(t / (1 - t)), y), abs=1e-6)
    assert after < before - 0.1
    assert textbook_ece(y, shipped) < textbook_ece(y, sigmoid(z)) / 3
    assert calibration.ece_after == pytest.approx(textbook_ece(y, shipped))
    assert calibration.ece_before == pytest.approx(textbook_ece(y, sigmoid(z)))
    assert ((shipped >= 0.5) == (sigmoid(z) >= t)).all()  # the MCC-chosen decision, kept exactly
    assert calibration.warnings == []


def test_a_model_whose_log_odds_say_nothing_is_shipped_as_trained() -> None:
    y = np.array([1, 0, 1, 1, 0, 1, 0, 1])
    calibration = choose_calibration(np.zeros(len(y)), y)
    assert (calibration.choice, calibration.threshold, calibration.temperature) == ("as trained", 0.5, 1.0)
    assert calibration.log_loss_after == calibration.log_loss_before == pytest.approx(np.log(2))
    assert calibration.summary().startswith("calibration: the model is shipped as trained")


def test_a_temperature_on_its_bound_is_said() -> None:
    """Log-odds that hardly vary (a model barely trained): the best T lies below 0.05, the search stops there."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 0.01, 600)
    y = (rng.random(600) < sigmoid(z * 100)).astype(int)
    unbounded = minimize_scalar(
        lambda log_t: sklearn_log_loss(y, sigmoid(z / np.exp(log_t)), labels=[0, 1]),
        bounds=(np.log(1e-4), 0.0),
        method="bounded",
    ).x
    assert np.exp(unbounded) < 0.03
    calibration = choose_calibration(z, y)
    assert calibration.temperature == pytest.approx(0.05, rel=1e-3)
    assert calibration.log_loss_after <= calibration.log_loss_before
    assert any("lower bound" in warning for warning in calibration.warnings)
    assert "Warning: the temperature 0.05 sits on the lower bound" in calibration.summary()


def test_a_model_that_gives_every_sentence_one_label_ships_its_mcc_threshold() -> None:
    """At 0.5 such a model decides nothing (MCC 0): the MCC threshold is shipped though log-loss rises."""
    import numpy as np
    from sklearn.metrics import matthews_corrcoef

    from workbench.core.evaluation.calibration import choose_calibration

    rng = np.random.default_rng(0)
    log_odds = rng.uniform(0.05, 3.0, 2000)  # every one above 0: 'acceptable' at 0.5
    labels = (rng.random(2000) < 1 / (1 + np.exp(-log_odds))).astype(int)  # calibrated as trained
    chosen = choose_calibration(log_odds, labels)
    assert chosen.log_loss_after > chosen.log_loss_before  # the price, which the rule before never paid
    assert chosen.threshold != 0.5 and "every validation sentence acceptable" in chosen.reason
    p = 1 / (1 + np.exp(-log_odds))
    mcc = matthews_corrcoef(labels, (p >= chosen.threshold).astype(int))
    assert mcc > 0.2 and mcc == pytest.approx(chosen.mcc_at_threshold, abs=1e-9)
