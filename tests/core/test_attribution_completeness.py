"""How much the attributions explain: the [MASK] baseline, completeness checked against the model's own
forward passes, batched attributions, the summary every face shows, NO_COLOR magnitudes, pair verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workbench.core.explore.explain import (
    DEFAULT_BASELINE,
    Explanation,
    PairComparison,
    completeness,
    convergence_warning,
    explain,
    explain_many,
    minimal_pair,
)
from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.model.predict import InputError


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def tiny_bert(tiny_model_dir: Path) -> Any:
    """The tiny random BERT, word embeddings and classifier scaled up so that sentences' logits differ."""
    import torch

    model = load_model(str(tiny_model_dir)).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
        model.classifier.weight.mul_(2000.0)
    return model


def own_log_odds(model: Any, ids: list[int]) -> float:
    """logit[acceptable] - logit[unacceptable] by the model's own forward pass on token ids."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids))).logits[0]
    return float(logits[1] - logits[0])


@pytest.mark.parametrize("baseline", [DEFAULT_BASELINE, "mask"])
@pytest.mark.parametrize(
    "sentence",
    ["The book was written by John.", "Who do you think that left?", "Colorless green ideas sleep furiously."],
)
def test_attributions_add_up_to_the_change_from_the_baseline(
    tiny_bert: Any, tokenizer: Any, sentence: str, baseline: str
) -> None:
    result = explain(tiny_bert, tokenizer, sentence, baseline=baseline)
    ids = tokenizer(sentence)["input_ids"]
    filler = tokenizer.mask_token_id if baseline == "mask" else tokenizer.pad_token_id
    masked = [ids[0]] + [filler] * (len(ids) - 2) + [ids[-1]]  # [CLS] [PAD or MASK]... [SEP]
    sentence_odds, baseline_odds = own_log_odds(tiny_bert, ids), own_log_odds(tiny_bert, masked)
    assert result.log_odds == pytest.approx(sentence_odds, abs=1e-4)
    assert result.baseline_log_odds == pytest.approx(baseline_odds, abs=1e-4)
    change = sentence_odds - baseline_odds
    assert abs(change) > 0.05  # the scaled model makes the check meaningful
    assert result.delta is not None
    # completeness: the sum misses the change by the reported convergence error, and that error is small
    assert sum(result.attributions) - change == pytest.approx(result.delta, abs=1e-3)
    assert abs(sum(result.attributions) - change) <= 0.05 * abs(change) + 0.02
    assert result.explained_share == pytest.approx(sum(result.attributions) / change, rel=1e-3)


def test_batched_attributions_equal_one_at_a_time(tiny_bert: Any, tokenizer: Any) -> None:
    sentences = ["The cat sat.", "  ", "Who do you think that left the party early?", "Dogs bark.", "😺"]
    batched = explain_many(tiny_bert, tokenizer, sentences, n_steps=16)
    assert isinstance(batched[1], InputError) and isinstance(batched[4], InputError)
    for sentence, result in zip(sentences, batched, strict=True):
        if isinstance(result, InputError):
            continue
        alone = explain(tiny_bert, tokenizer, sentence, n_steps=16)
        assert result.tokens == alone.tokens
        assert result.attributions == pytest.approx(alone.attributions, abs=1e-4)
        assert result.log_odds == pytest.approx(alone.log_odds, abs=1e-4)


def explanation(attributions: list[float], log_odds: float, baseline_log_odds: float) -> Explanation:
    change = log_odds - baseline_log_odds
    return Explanation(
        sentence="a b c",
        tokens=["[CLS]", "a", "b", "c", "[SEP]"],
        attributions=attributions,
        probabilities={"unacceptable": 0.2, "acceptable": 0.8},
        label="acceptable",
        method="layer_integrated_gradients",
        delta=sum(attributions) - change,
        log_odds=log_odds,
        baseline_log_odds=baseline_log_odds,
        n_steps=16,
    )


def test_the_summary_says_how_much_of_the_change_the_attributions_explain() -> None:
    e = explanation([0.0, 0.1, 0.02, 0.023, 0.0], log_odds=5.131, baseline_log_odds=4.165)  # the case
    line = completeness(e)
    assert "log-odds +5.13" in line and "baseline +4.17" in line and "change +0.97" in line
    assert "sum +0.14" in line and "= 15% of it" in line and len(line) <= 80
    assert "convergence error -0.82" in convergence_warning(e)
    assert DEFAULT_BASELINE == "pad" and "[PAD]" in legend_text(e)
    good = explanation([0.0, 0.5, 0.3, 0.16, 0.0], log_odds=1.0, baseline_log_odds=0.0)  # 96%: within 5% + 0.02
    assert good.converged and convergence_warning(good) == ""


def legend_text(e: Explanation) -> str:
    from workbench.core.explore.explain import describe_method

    return describe_method(e)


def test_no_color_marks_show_magnitude() -> None:
    from workbench.tui.widgets.attributions import attribution_text

    text = attribution_text(
        ["[CLS]", "big", "mid", "small", "neg", "[SEP]"],
        [0.0, 3.0, 1.5, 0.5, -3.0, 0.0],
        special_tokens=["[CLS]", "[SEP]"],
        marks=True,
    )
    assert text.plain == "▲▲▲big ▲▲mid ▲small ▼▼▼neg"


def test_the_tui_legend_shows_the_log_odds_and_the_warning() -> None:
    from workbench.tui.widgets.attributions import legend

    text = legend(explanation([0.0, 0.1, 0.02, 0.023, 0.0], log_odds=5.131, baseline_log_odds=4.165), marks=True)
    assert "log-odds +5.13, baseline +4.17" in text.plain and "15% of it" in text.plain
    assert "convergence error" in text.plain and "[PAD]" in text.plain


def pair(p_a: float, p_b: float) -> PairComparison:
    label = lambda p: "acceptable" if p >= 0.5 else "unacceptable"  # noqa: E731
    return PairComparison(
        a="a",
        b="b",
        probabilities_a={"acceptable": p_a, "unacceptable": 1 - p_a},
        probabilities_b={"acceptable": p_b, "unacceptable": 1 - p_b},
        label_a=label(p_a),
        label_b=label(p_b),
        delta_acceptable=p_b - p_a,
    )


def test_a_pair_says_when_the_model_does_not_separate_the_sentences() -> None:
    assert "does not separate" in pair(0.994, 0.990).verdict()
    flipped = pair(0.9, 0.2).verdict()
    assert "separates them" in flipped and "A more acceptable by 0.700" in flipped and "label flips" in flipped


def test_a_pair_carries_both_sentences_attributions(tiny_bert: Any, tokenizer: Any) -> None:
    from workbench.tui.widgets.attributions import pair_text

    result = minimal_pair(
        tiny_bert, tokenizer, "The book was written by John.", "The book was written from John.", attributions=True
    )
    assert result.explanation_a is not None and result.explanation_b is not None
    assert result.explanation_a.sentence == "The book was written by John."
    assert result.explanation_b.attributions == pytest.approx(
        explain(tiny_bert, tokenizer, "The book was written from John.").attributions, abs=1e-4
    )
    shown = pair_text(result, marks=True, special_tokens=["[CLS]", "[SEP]"]).plain
    assert shown.count("why ") == 2 and "from" in shown and "separate" in shown


def test_the_convergence_error_is_shown_to_the_decimals_that_mean_something() -> None:
    """Float noise (different on another CPU) reads as zero, so the same explanation reads the same."""
    tiny = explanation([0.0, 0.5, 0.3, 0.2, 0.0], log_odds=1.0 - 3.6e-9, baseline_log_odds=0.0)
    assert tiny.delta is not None and abs(tiny.delta) < 1e-6
    assert legend_text(tiny).endswith("δ +0.000")
    off = explanation([0.0, 0.1, 0.02, 0.023, 0.0], log_odds=5.131, baseline_log_odds=4.165)
    assert legend_text(off).endswith("δ -0.823")  # 0.143 - (5.131 - 4.165)
