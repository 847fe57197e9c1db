"""Scoring many sentences in batches: the same probabilities as one at a time, errors in their place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.core.base.config import project_data_dir
from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.model.predict import InputError, Predictor


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    import torch

    model = load_model(str(tiny_model_dir)).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)  # logits that differ between sentences
        model.classifier.weight.mul_(200.0)
    return Predictor(model, load_tokenizer(str(tiny_model_dir)))


def test_batched_predictions_equal_one_at_a_time_on_50_sentences(predictor: Predictor) -> None:
    lines = (project_data_dir() / "out_of_domain_dev.tsv").read_text(encoding="utf-8").splitlines()
    sentences = [line.split("\t")[3] for line in lines[:50]]
    batched = predictor.predict_many(sentences, batch_size=16)
    alone = [predictor.predict_one(s) for s in sentences]
    assert [p.sentence for p in batched] == [p.sentence for p in alone]  # in the input's order
    np.testing.assert_allclose(
        [p.probabilities["acceptable"] for p in batched], [p.probabilities["acceptable"] for p in alone], atol=1e-5
    )
    assert np.std([p.probabilities["acceptable"] for p in alone]) > 1e-3  # the comparison is not vacuous
    assert [p.tokens for p in batched] == [p.tokens for p in alone]


def test_batched_predictions_keep_refused_sentences_in_place(predictor: Predictor) -> None:
    results = predictor.predict_many(["The cat sat.", " \x00 ", "Dogs bark."], batch_size=2)
    assert isinstance(results[1], InputError)
    assert [r.sentence for r in results if not isinstance(r, InputError)] == ["The cat sat.", "Dogs bark."]


def test_cli_predict_from_stdin_in_batches(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from workbench.cli import main

    stdin = io.TextIOWrapper(io.BytesIO(b"The cat sat.\n\x01\nA much longer sentence here.\n"))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["predict", str(tiny_model_dir)]) == 2  # one refused line: exit 2, the others scored
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("The cat sat.") and lines[1].endswith("A much longer sentence here.")
    assert "error: empty sentence" in captured.err
    expected: Any = Predictor.load(str(tiny_model_dir), device="cpu").predict_one("A much longer sentence here.")
    assert f"p(acceptable) {expected.probabilities['acceptable']:.3f}" in lines[1]


def test_bf16_precision_scores_under_torch_autocast(predictor: Predictor) -> None:
    """--precision bf16: the probabilities of the model run under torch's own bf16 autocast (computed here
    without the Predictor), which differ from fp32's: the option is not a no-op."""
    import torch

    sentences = ["The cat sat on the mat.", "Cat the mat on sat.", "She gave him the book yesterday."]
    fast = Predictor(predictor.model, predictor.tokenizer, precision="bf16").predict_many(sentences)
    batch = predictor.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = torch.softmax(predictor.model(**batch).logits.float(), dim=-1)[:, 1].numpy()
    got = [p.probabilities["acceptable"] for p in fast]  # type: ignore[union-attr]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    exact = [p.probabilities["acceptable"] for p in predictor.predict_many(sentences)]  # type: ignore[union-attr]
    assert max(abs(a - b) for a, b in zip(got, exact, strict=True)) > 1e-6
    with pytest.raises(ValueError, match="precision 'fp16'"):
        Predictor(predictor.model, predictor.tokenizer, precision="fp16").predict_one("The cat sat.")


def test_cli_predict_takes_a_precision(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`predict --precision bf16` gives the logits of the model run under torch's bf16 autocast, computed here
    with transformers alone; the default gives fp32's. The two differ, so a dropped option would show."""
    import json

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from workbench.cli import main

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir)).eval()
    batch = AutoTokenizer.from_pretrained(str(tiny_model_dir))(["The cat sat."], return_tensors="pt")
    with torch.inference_mode():
        fp32 = model(**batch).logits[0].tolist()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(**batch).logits.float()[0].tolist()
    assert max(abs(a - b) for a, b in zip(fp32, bf16, strict=True)) > 1e-6
    for flags, expected in ((["--precision", "bf16"], bf16), ([], fp32)):
        assert main(["predict", str(tiny_model_dir), *flags, "--json", "The cat sat."]) == 0
        said = json.loads(capsys.readouterr().out)
        assert said["logits"] == pytest.approx(expected, abs=1e-7), flags
    with pytest.raises(SystemExit):
        main(["predict", str(tiny_model_dir), "--precision", "fp8", "The cat sat."])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def padded_tokens_seen(model: Any, score: Any) -> int:
    """Tokens (padding included) of every batch MODEL's forward receives while SCORE runs."""
    seen: list[int] = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(int(kwargs["input_ids"].numel())), with_kwargs=True
    )
    try:
        score()
    finally:
        handle.remove()
    return sum(seen)


def least_padded_tokens(tokenizer: Any, sentences: list[str], batch_size: int) -> int:
    """The fewest tokens batches of BATCH_SIZE can hold SENTENCES in: sorted by their token counts."""
    lengths = sorted(len(ids) for ids in tokenizer(sentences)["input_ids"])
    return sum(
        max(chunk) * len(chunk) for chunk in (lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size))
    )


def test_batches_are_made_by_tokens_so_padding_is_least(predictor: Predictor) -> None:
    """Sorted by characters, a long word (many pieces) shares a batch with short-worded sentences of more
    characters: padded to its length, they waste tokens. Sorted by tokens, the batches hold the least."""
    from workbench.core.evaluation.evaluate import logits_for

    lines = (project_data_dir() / "out_of_domain_dev.tsv").read_text(encoding="utf-8").splitlines()
    sentences = [line.split("\t")[3] for line in lines[:120]] + [
        "Antidisestablishmentarianism.",
        "Pneumonoultramicroscopic.",
    ]
    tokenizer, model = predictor.tokenizer, predictor.model
    least = least_padded_tokens(tokenizer, sentences, 16)
    by_characters = sorted(sentences, key=len)
    assert least_padded_tokens(tokenizer, by_characters, 16) >= least  # (the helper's own sanity)
    assert padded_tokens_seen(model, lambda: predictor.predict_many(sentences, batch_size=16)) == least
    assert padded_tokens_seen(model, lambda: logits_for(model, tokenizer, sentences, batch_size=16)) == least
