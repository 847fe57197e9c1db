"""Minimal-pair suites: does the model give the acceptable sentence of each pair the higher p(acceptable)?

Reads BLiMP's JSON lines (`sentence_good`, `sentence_bad`, `UID`, `field`, `linguistics_term`, ...) and
TSV/CSV files with a header naming `good` and `bad` (and optionally `paradigm`, `field`). A pair is right
when p(acceptable | good) > p(acceptable | bad) (a tie is wrong). Sentences are scored at the model's full
length (its position embeddings, and its tokenizer's limit), not the 128 tokens of training: a pair whose
two sentences are still the same tokens (they differ only past that length, or only in what the tokenizer
drops, such as case for an uncased one) cannot be told apart by any model, and is counted *not separable*,
apart from right and wrong; the accuracy is over the separable pairs. Scoring is batched: each distinct
sentence once, sorted by length so padding stays small, under torch.inference_mode."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.data.cola import DataError, read_text_lines
from workbench.core.explore.explain import differing_words

PAIR_COLUMNS = ["good", "bad", "paradigm", "field", "line"]
SUITE_SUFFIXES = (".tsv", ".csv", ".jsonl", ".json")
SUITE_PREFIX = "pairs:"  # how the TUI names a suite among its datasets: pairs:<file name>


def suites_dir() -> Path:
    """The bundled suites: data/pairs/ beside data/cola/."""
    from workbench.core.base.config import project_data_dir

    return project_data_dir().parent / "pairs"


def suite_files(folder: Path | None = None) -> list[Path]:
    """The suite files in FOLDER (default: the bundled data/pairs/), by name."""
    folder = folder or suites_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUITE_SUFFIXES)


BLIMP_KEYS = ("sentence_good", "sentence_bad")
BATCH_SIZE = 256


@dataclass
class PairSuite:
    path: Path
    pairs: pd.DataFrame  # good, bad, paradigm, field, line (the file's line of the pair)

    def __len__(self) -> int:
        return len(self.pairs)


def _text(path: Path, line: int, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, "is missing or empty", line=line, field=name)
    if "\x00" in value:
        raise DataError(path, "contains a NUL byte", line=line, field=name)
    return " ".join(value.split())


def _json_lines(path: Path, lines: list[str]) -> list[tuple[str, str, str, str, int]]:
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if number == len(lines):
                continue
            raise DataError(path, "blank line", line=number)
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, f"not JSON ({err.msg})", line=number) from None
        if not isinstance(item, dict):
            raise DataError(path, "not a JSON object", line=number)
        missing = [key for key in BLIMP_KEYS if key not in item]
        if missing:
            raise DataError(path, f"no {' or '.join(missing)} (BLiMP's keys)", line=number)
        good, bad = (_text(path, number, key, item[key]) for key in BLIMP_KEYS)
        paradigm = str(item.get("UID") or item.get("paradigm") or path.stem)
        field_name = str(item.get("field") or item.get("linguistics_term") or "")
        rows.append((good, bad, paradigm, field_name, number))
    return rows


def _table(path: Path, text: str, lines: list[str]) -> list[tuple[str, str, str, str, int]]:
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
        missing = [name for name in ("good", "bad") if name not in header]
        if missing:
            raise DataError(
                path, f"the header must name the 'good' and 'bad' columns (no {', '.join(missing)})", line=1
            )
        column = {name: header.index(name) for name in ("good", "bad", "paradigm", "field") if name in header}
        rows = []
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                if number == len(lines):
                    continue
                raise DataError(path, "blank line", line=number)
            if len(row) != len(header):
                raise DataError(path, f"expected {len(header)} columns as in the header, found {len(row)}", line=number)
            good, bad = (_text(path, number, name, row[column[name]]) for name in ("good", "bad"))
            paradigm = row[column["paradigm"]].strip() if "paradigm" in column else ""
            field_name = row[column["field"]].strip() if "field" in column else ""
            rows.append((good, bad, paradigm or path.stem, field_name, number))
    except csv.Error as err:
        raise DataError(
            path, f"malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({err})", line=reader.line_num
        ) from None
    return rows


def load_suite(path: Path | str) -> PairSuite:
    """A suite of minimal pairs: BLiMP JSON lines (a .jsonl/.json file, or lines starting with '{') or a
    TSV/CSV with a header. DataError (file, line, field) on anything it cannot read; no pair is skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such suite file" if not path.exists() else "is not a file")
    text, lines = read_text_lines(path, "pairs")
    first = next(line for line in lines if line.strip())
    is_json = path.suffix.lower() in (".jsonl", ".json") or first.lstrip().startswith("{")
    rows = _json_lines(path, lines) if is_json else _table(path, text, lines)
    if not rows:
        raise DataError(path, "has a header but no pairs")
    return PairSuite(path, pd.DataFrame(rows, columns=PAIR_COLUMNS))


# a tokenizer's model_max_length above this is transformers' "no limit" placeholder (int(1e30))
NO_TOKENIZER_LIMIT = 1_000_000
FALLBACK_LENGTH = 512  # a model that says nothing of its positions


def full_length(model: Any, tokenizer: Any) -> int:
    """The most tokens MODEL reads: its position embeddings, and never more than TOKENIZER's own limit
    (RoBERTa has 514 positions for 512 tokens)."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    length = positions if isinstance(positions, int) and positions > 0 else FALLBACK_LENGTH
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < NO_TOKENIZER_LIMIT:
        length = min(length, limit)
    return length


def p_acceptable(
    model: Any, tokenizer: Any, sentences: list[str], max_length: int = 128, batch_size: int = BATCH_SIZE
) -> np.ndarray:
    """p(acceptable) of each sentence (batched, length-sorted, dynamic padding, inference mode)."""
    from workbench.core.base.config import LABELS
    from workbench.core.evaluation.evaluate import logits_for, softmax

    return softmax(logits_for(model, tokenizer, sentences, max_length, batch_size))[:, LABELS.index("acceptable")]


@dataclass
class GroupScore:
    name: str
    n: int  # pairs, the not separable ones included
    right: int
    not_separable: int = 0

    @property
    def accuracy(self) -> float:
        """Right of the separable pairs."""
        scored = self.n - self.not_separable
        return self.right / scored if scored else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "right": self.right,
            "not_separable": self.not_separable,
            "accuracy": self.accuracy,
        }


@dataclass
class PairsReport:
    """The suite scored: `table` is the suite with p_good, p_bad, margin (p_good - p_bad), right, separable
    and why_not (why a pair is not separable, "" when it is)."""

    path: Path
    table: pd.DataFrame = field(repr=False)
    max_length: int = 0  # the tokens each sentence was scored on

    @property
    def n(self) -> int:
        return len(self.table)

    @property
    def right(self) -> int:
        return int(self.table["right"].sum())

    @property
    def not_separable(self) -> int:
        return int((~self.table["separable"]).sum())

    @property
    def wrong(self) -> int:
        return self.n - self.not_separable - self.right

    @property
    def accuracy(self) -> float:
        """Right of the separable pairs."""
        scored = self.n - self.not_separable
        return self.right / scored if scored else 0.0

    def groups(self, by: str) -> list[GroupScore]:
        """Accuracy per paradigm or field (groups without a name left out), worst first."""
        named = self.table[self.table[by] != ""]
        scores = [
            GroupScore(str(name), len(group), int(group["right"].sum()), int((~group["separable"]).sum()))
            for name, group in named.groupby(by, sort=True)
        ]
        return sorted(scores, key=lambda g: (g.accuracy, g.name))

    def failed(self) -> pd.DataFrame:
        """The separable pairs it gets wrong, the most wrong (lowest margin) first."""
        return self.table[self.table["separable"] & ~self.table["right"]].sort_values("margin", kind="stable")

    def inseparable(self) -> pd.DataFrame:
        """The pairs no model can tell apart at MAX_LENGTH tokens, in the file's order."""
        return self.table[~self.table["separable"]]

    def words(self, index: int) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
        """Pair INDEX's words, the ones that differ marked (as `explain --versus` marks them)."""
        row = self.table.loc[index]
        return differing_words(row["good"], row["bad"])

    def to_dict(self, worst: int = 20) -> dict[str, Any]:
        failed = self.failed().head(worst) if worst > 0 else self.failed()
        return {
            "file": str(self.path),
            "n": self.n,
            "right": self.right,
            "wrong": self.wrong,
            "not_separable": self.not_separable,
            "accuracy": self.accuracy,
            "accuracy_of": "the separable pairs (right / (n - not_separable))",
            "max_length": self.max_length,
            "fields": [g.to_dict() for g in self.groups("field")],
            "paradigms": [g.to_dict() for g in self.groups("paradigm")],
            "failed": [
                {
                    "line": int(r.line),
                    "paradigm": r.paradigm,
                    "field": r.field,
                    "good": r.good,
                    "bad": r.bad,
                    "p_good": float(r.p_good),
                    "p_bad": float(r.p_bad),
                    "words_good": [[w, c] for w, c in self.words(r.Index)[0]],
                    "words_bad": [[w, c] for w, c in self.words(r.Index)[1]],
                }
                for r in failed.itertuples()
            ],
            "not_separable_pairs": [
                {
                    "line": int(r.line),
                    "paradigm": r.paradigm,
                    "field": r.field,
                    "good": r.good,
                    "bad": r.bad,
                    "why": r.why_not,
                }
                for r in self.inseparable().itertuples()
            ],
        }


def _whole(tokenizer: Any, text: str) -> list[int]:
    """TEXT's tokens, however many (an explicit limit: no "longer than the model" warning)."""
    return list(tokenizer(text, truncation=True, max_length=NO_TOKENIZER_LIMIT)["input_ids"])


def inseparable_reasons(tokenizer: Any, pairs: pd.DataFrame, max_length: int) -> list[str]:
    """Per pair of PAIRS (good, bad), why no model can tell them apart when each is read as at most
    MAX_LENGTH tokens ("" when one can): the same text, the same tokens (what differs is what the tokenizer
    drops), or the same first MAX_LENGTH tokens. Each distinct sentence is tokenized once."""
    sentences = sorted(set(pairs["good"]) | set(pairs["bad"]))
    seen = tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"]
    tokens = {sentence: tuple(ids) for sentence, ids in zip(sentences, seen, strict=True)}
    reasons = []
    for good, bad in zip(pairs["good"], pairs["bad"], strict=True):
        if good == bad:
            reasons.append("the same sentence")
        elif tokens[good] != tokens[bad]:
            reasons.append("")
        elif _whole(tokenizer, good) == _whole(tokenizer, bad):
            reasons.append("the same tokens (they differ only in what the tokenizer drops)")
        else:
            reasons.append(f"the same first {max_length} tokens (they differ only past the model's length)")
    return reasons


def score_suite(
    model: Any, tokenizer: Any, suite: PairSuite, max_length: int | None = None, batch_size: int = BATCH_SIZE
) -> PairsReport:
    """Every pair of SUITE scored by MODEL (each distinct sentence once), at MAX_LENGTH tokens (default:
    the model's full length, `full_length`)."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size}: must be at least 1")
    length = full_length(model, tokenizer) if max_length is None else max_length
    pairs = suite.pairs
    sentences = sorted(set(pairs["good"]) | set(pairs["bad"]))
    probabilities = p_acceptable(model, tokenizer, sentences, length, batch_size)
    lookup = dict(zip(sentences, probabilities.tolist(), strict=True))
    p_good = pairs["good"].map(lookup).to_numpy(dtype=float)
    p_bad = pairs["bad"].map(lookup).to_numpy(dtype=float)
    why_not = inseparable_reasons(tokenizer, pairs, length)
    separable = np.array([not why for why in why_not], dtype=bool)
    table = pairs.assign(
        p_good=p_good,
        p_bad=p_bad,
        margin=p_good - p_bad,
        right=separable & (p_good > p_bad),
        separable=separable,
        why_not=why_not,
    )
    return PairsReport(suite.path, table, length)
