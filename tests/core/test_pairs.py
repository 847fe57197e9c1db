"""Minimal-pair suites (core/explore/pairs.py): reading BLiMP JSON lines and TSV/CSV, scoring in batches."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from workbench.core.data.cola import DataError
from workbench.core.explore.pairs import load_suite, score_suite
from workbench.core.model.loading import load_tokenizer

# (paradigm, field, good, bad): the good sentence is the shorter one in the first three, the longer in the last two
PAIRS = [
    ("agreement", "morphology", "The dog barks.", "The dog are barking loudly."),
    ("agreement", "morphology", "Cats sleep.", "Cats sleeps all day long."),
    ("binding", "syntax", "Mary saw herself.", "Mary saw himself in the mirror."),
    ("binding", "syntax", "John likes himself very much indeed.", "John likes herself."),
    ("argument", "syntax", "The chef cut the fresh bread slowly.", "The chef cut."),
]


def _write_both(folder: Path) -> tuple[Path, Path]:
    tsv = folder / "suite.tsv"
    tsv.write_text("paradigm\tfield\tgood\tbad\n" + "".join("\t".join(p) + "\n" for p in PAIRS), encoding="utf-8")
    jsonl = folder / "suite.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps(
                {"sentence_good": g, "sentence_bad": b, "UID": p, "field": f, "linguistics_term": p, "pairID": str(i)}
            )
            + "\n"
            for i, (p, f, g, b) in enumerate(PAIRS)
        ),
        encoding="utf-8",
    )
    return tsv, jsonl


class ShortIsAcceptable(torch.nn.Module):
    """A stand-in classifier whose log-odds of acceptable is minus the sentence's real token count (the
    attention mask's sum): the model under which we know each pair's answer. Padding, when a batch
    mixes lengths, would change nothing; reading input_ids' width instead of the mask would."""

    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor(bias))
        self.config = SimpleNamespace(num_labels=2)

    def forward(self, input_ids: Any, attention_mask: Any, **_: Any) -> Any:
        length = attention_mask.sum(dim=1).float()
        return SimpleNamespace(logits=torch.stack([torch.zeros_like(length), self.bias - length], dim=1))


def test_both_formats_score_alike_and_as_the_model_must(tmp_path: Path) -> None:
    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    tsv, jsonl = _write_both(tmp_path)
    reports = [score_suite(ShortIsAcceptable(), tokenizer, load_suite(path), batch_size=2) for path in (tsv, jsonl)]
    lengths = {s: len(tokenizer(s)["input_ids"]) for p in PAIRS for s in p[2:]}
    expected = [lengths[g] < lengths[b] for _, _, g, b in PAIRS]
    assert expected == [True, True, True, False, False]
    for report in reports:
        assert report.table["right"].tolist() == expected
        assert report.accuracy == pytest.approx(3 / 5)
        by_paradigm = {g.name: g.accuracy for g in report.groups("paradigm")}
        assert by_paradigm == {"agreement": 1.0, "binding": 0.5, "argument": 0.0}
        assert {g.name: (g.n, g.right) for g in report.groups("field")} == {"morphology": (2, 2), "syntax": (3, 1)}
        worst = report.failed()
        assert worst["line"].tolist() == ([6, 5] if report.path == tsv else [5, 4])  # most wrong first
        good_words, bad_words = report.words(worst.index[0])
        assert [w for w, changed in bad_words if changed] == ["cut."]
    assert reports[0].table[["p_good", "p_bad"]].to_numpy() == pytest.approx(reports[1].table[["p_good", "p_bad"]])


def test_a_constant_classifier_gets_every_pair_wrong(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A real BERT whose classifier weights are zeroed and bias set: p(acceptable) is the same for every
    sentence, so no good sentence is scored above its bad one (a tie is wrong)."""
    from workbench.core.model.loading import load_model

    model = load_model(str(tiny_model_dir))
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 2.0]))
    report = score_suite(model, load_tokenizer(str(tiny_model_dir)), load_suite(_write_both(tmp_path)[0]))
    assert report.accuracy == 0.0
    assert report.table["p_good"].to_numpy() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=1e-6)


def test_the_shipped_example_suite_reads() -> None:
    suite = load_suite(Path(__file__).parents[2] / "data" / "pairs" / "example.tsv")
    assert len(suite) >= 40 and suite.pairs["field"].ne("").all()
    assert (suite.pairs["good"] != suite.pairs["bad"]).all()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("no_bad.tsv", "paradigm\tgood\nx\tThe dog barks.\n", r"no_bad.tsv:1: the header must name .*no bad"),
        ("blank.tsv", "good\tbad\nA b.\tB a.\n\nC d.\tD c.\n", r"blank.tsv:3: blank line"),
        ("short.csv", "good,bad\nA b.,\n", r"short.csv:2: bad: is missing or empty"),
        ("blimp.jsonl", '{"sentence_good": "A b."}\n', r"blimp.jsonl:1: no sentence_bad"),
        (
            "broken.jsonl",
            '{"sentence_good": "A b.", "sentence_bad": "B a."}\n{"sentence_good": \n',
            r"broken.jsonl:2: not JSON",
        ),
        ("empty.tsv", "\n\n", r"empty.tsv: is empty"),
    ],
)
def test_bad_suite_files_are_named_with_their_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_suite(tmp_path / name)


def test_pairs_no_model_can_tell_apart_are_not_separable(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The tiny BERT reads 128 tokens: a pair differing only past them, one differing only in case (an
    uncased tokenizer) and one pair of the same sentence are neither right nor wrong."""
    from workbench.core.model.loading import load_model

    tokenizer = load_tokenizer(str(tiny_model_dir))
    prefix = "the cat sat on the mat and " * 25  # 175 word pieces
    rows = [
        ("The dog barks.", "The dog bark."),
        (prefix + "it purred.", prefix + "it purred purred."),
        ("The Dog barks.", "the dog barks."),
        ("Cats sleep.", "Cats sleep."),
        ("Mary saw herself.", "Mary saw himself."),
    ]
    suite = tmp_path / "suite.tsv"
    suite.write_text("good\tbad\n" + "".join(f"{g}\t{b}\n" for g, b in rows), encoding="utf-8")
    model = load_model(str(tiny_model_dir))
    report = score_suite(model, tokenizer, load_suite(suite))
    assert report.max_length == 128 == model.config.max_position_embeddings
    # by the tokenizer alone: which pairs are the same tokens at 128
    same = [
        tokenizer(g, truncation=True, max_length=128)["input_ids"]
        == tokenizer(b, truncation=True, max_length=128)["input_ids"]
        for g, b in rows
    ]
    assert same == [False, True, True, True, False]
    assert report.table["separable"].tolist() == [not s for s in same]
    assert report.not_separable == 3 and not report.table["right"][~report.table["separable"]].any()
    right = [p_good > p_bad for p_good, p_bad in zip(report.table["p_good"], report.table["p_bad"], strict=True)]
    assert report.right == right[0] + right[4] and report.wrong == 2 - report.right
    assert report.accuracy == report.right / 2
    assert len(report.failed()) == report.wrong  # the not separable ones are not listed as wrong
    assert report.table["why_not"].tolist()[1:4] == [
        "the same first 128 tokens (they differ only past the model's length)",
        "the same tokens (they differ only in what the tokenizer drops)",
        "the same sentence",
    ]
    saved = report.to_dict()
    assert saved["not_separable"] == 3 and [p["line"] for p in saved["not_separable_pairs"]] == [3, 4, 5]


def test_pairs_are_scored_at_the_models_full_length_not_128(tmp_path: Path) -> None:
    """Under the token-count model the shorter sentence wins: bad is good with 3 words more, past token 128.
    Read at 128 tokens both would be 128 long, a tie (wrong); the tokenizer's 512 tell them apart."""
    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    good = "the cat sat on the mat and " * 25 + "it purred."
    bad = good[:-1] + " and purred again."
    assert 128 < len(tokenizer(good)["input_ids"]) < len(tokenizer(bad)["input_ids"]) < 512
    suite = tmp_path / "suite.tsv"
    suite.write_text(f"good\tbad\n{good}\t{bad}\n", encoding="utf-8")
    centre = len(tokenizer(good)["input_ids"]) + 0.5  # log-odds near 0, where float32 tells p apart
    report = score_suite(ShortIsAcceptable(bias=centre), tokenizer, load_suite(suite))
    assert report.max_length == 512 and report.right == 1 and report.not_separable == 0
    at_128 = score_suite(ShortIsAcceptable(bias=128.5), tokenizer, load_suite(suite), max_length=128)
    assert at_128.right == 0 and at_128.not_separable == 1  # what 128 tokens made of it


def test_a_batch_size_below_one_is_refused(tmp_path: Path) -> None:
    tsv, _ = _write_both(tmp_path)
    for size in (0, -1):
        with pytest.raises(ValueError, match=f"batch size {size}: must be at least 1"):
            score_suite(
                ShortIsAcceptable(), load_tokenizer("embedded:all-MiniLM-L6-v2"), load_suite(tsv), batch_size=size
            )
