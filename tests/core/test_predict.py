"""Predicting odd sentences: empty ones get a clear message, any script or control character a
result, a long one is truncated to the model's positions and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.model.predict import InputError, Predictor


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor(load_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir)))


@pytest.mark.parametrize("text", ["", "   ", "\t\n \r", "\x00", "\x00\x01\x1b\x7f"])
def test_empty_sentences_get_a_clear_message(predictor: Predictor, text: str) -> None:
    with pytest.raises(InputError, match="empty sentence"):
        predictor.predict_one(text)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("The cat 😺 sat on the mat. 🎉🎉", "The cat 😺 sat on the mat. 🎉🎉"),
        ("הספר נכתב על ידי ג'ון.", "הספר נכתב על ידי ג'ון."),  # right to left
        ("كتب جون الكتاب.", "كتب جون الكتاب."),
        ("\u202eThe book was written.\u202c", "\u202eThe book was written.\u202c"),  # bidi override kept
        ("The\x00 cat\x07 sat\x1b[31m.", "The cat sat[31m."),  # control characters (NUL, BEL, ESC) dropped
        ("caf\udce9 au lait", "caf\ufffd au lait"),  # a lone surrogate from undecodable argv bytes
        ("\u200b", "\u200b"),  # invisible, but not empty: a result, not a crash
    ],
)
def test_odd_sentences_get_a_result(predictor: Predictor, text: str, shown: str) -> None:
    result = predictor.predict_one(text)
    assert result.sentence == shown and not result.truncated
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")  # printable as UTF-8


def test_a_10000_character_sentence_is_truncated_and_says_so(predictor: Predictor) -> None:
    text = ("The cat sat. " * 800)[:10_000]
    result = predictor.predict_one(text)
    assert result.truncated and result.tokens == predictor.max_length == 128


def test_truncation_respects_a_model_with_fewer_positions(tiny_model_dir: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = load_tokenizer(str(tiny_model_dir))
    short = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
            num_labels=2,
        )
    )
    result = Predictor(short, tokenizer).predict_one("word " * 2000)  # 128 tokens would overrun 32 positions
    assert result.truncated and result.tokens == 32
