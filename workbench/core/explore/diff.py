"""Two runs side by side: which sentences both get right, only one, neither; where they disagree."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.evaluation.recorded import DiffError, read_predictions


@dataclass
class Disagreement:
    sentence: str
    label: int
    source: str
    p_a: float  # p(acceptable) by run A
    p_b: float  # p(acceptable) by run B
    right: str  # "a" or "b": the run that got it right

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunDiff:
    n: int
    both_right: int
    only_a: int
    only_b: int
    both_wrong: int
    disagreements: list[Disagreement] = field(default_factory=list)  # largest |p_a - p_b| first

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "both_right": self.both_right,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "both_wrong": self.both_wrong,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


def _predicted(table: pd.DataFrame) -> np.ndarray:
    if "predicted" in table:
        return table["predicted"].to_numpy(dtype=int)
    return (table["p_acceptable"].to_numpy(dtype=float) > 0.5).astype(int)


def _keys(sentences: list[str]) -> list[tuple[str, int]]:
    """(sentence, how many times it was seen before): duplicates stay distinct."""
    seen: dict[str, int] = {}
    keys = []
    for sentence in sentences:
        keys.append((sentence, seen.get(sentence, 0)))
        seen[sentence] = seen.get(sentence, 0) + 1
    return keys


def align(table_a: pd.DataFrame, table_b: pd.DataFrame, name_a: str = "A", name_b: str = "B") -> pd.DataFrame:
    """Rows of TABLE_B in TABLE_A's order; DiffError unless both hold the same sentences with the same labels."""
    keys_a = _keys(table_a["sentence"].astype(str).tolist())
    keys_b = _keys(table_b["sentence"].astype(str).tolist())
    if keys_a == keys_b:
        order = np.arange(len(keys_b))
    else:
        position_b = {key: i for i, key in enumerate(keys_b)}
        only_a = [k for k in keys_a if k not in position_b]
        only_b = set(keys_b) - set(keys_a)
        if only_a or only_b or len(keys_a) != len(keys_b):
            example = only_a[0][0] if only_a else next(iter(only_b))[0]
            where = name_a if only_a else name_b
            raise DiffError(
                f"{name_a} and {name_b} were evaluated on different sentences ({len(keys_a)} vs "
                f"{len(keys_b)}; e.g. only {where} has {example[:60]!r}): evaluate both on the same split"
            )
        order = np.array([position_b[k] for k in keys_a])
    aligned = table_b.iloc[order].reset_index(drop=True)
    labels_a = table_a["label"].to_numpy(dtype=int)
    labels_b = aligned["label"].to_numpy(dtype=int)
    if not np.array_equal(labels_a, labels_b):
        bad = int(np.flatnonzero(labels_a != labels_b)[0])
        raise DiffError(
            f"{name_a} and {name_b} label the same sentences differently (e.g. "
            f"{table_a['sentence'].iloc[bad][:60]!r}): they were evaluated on different data files"
        )
    return aligned


def diff_predictions(table_a: pd.DataFrame, table_b: pd.DataFrame, name_a: str = "A", name_b: str = "B") -> RunDiff:
    """Counts of both right / only A / only B / both wrong over the same sentences, and the
    sentences where the two predictions differ (with binary labels, exactly one of them is right)."""
    table_a = table_a.reset_index(drop=True)
    table_b = align(table_a, table_b, name_a, name_b)
    labels = table_a["label"].to_numpy(dtype=int)
    right_a = _predicted(table_a) == labels
    right_b = _predicted(table_b) == labels
    p_a = table_a["p_acceptable"].to_numpy(dtype=float)
    p_b = table_b["p_acceptable"].to_numpy(dtype=float)
    sources = (table_a["source"] if "source" in table_a else pd.Series([""] * len(table_a))).astype(str).tolist()
    differ = np.flatnonzero(right_a != right_b)
    differ = differ[np.argsort(-np.abs(p_a[differ] - p_b[differ]), kind="stable")]
    disagreements = [
        Disagreement(
            sentence=str(table_a["sentence"].iloc[i]),
            label=int(labels[i]),
            source=sources[i],
            p_a=float(p_a[i]),
            p_b=float(p_b[i]),
            right="a" if right_a[i] else "b",
        )
        for i in differ
    ]
    return RunDiff(
        n=len(labels),
        both_right=int((right_a & right_b).sum()),
        only_a=int((right_a & ~right_b).sum()),
        only_b=int((~right_a & right_b).sum()),
        both_wrong=int((~right_a & ~right_b).sum()),
        disagreements=disagreements,
    )


def diff_models(
    model_a: Any, tokenizer_a: Any, model_b: Any, tokenizer_b: Any, frame: pd.DataFrame, max_length: int = 128
) -> RunDiff:
    """The same comparison, predicting FRAME (sentence, label, source) with two models."""
    from workbench.core.evaluation.evaluate import evaluate_frame

    table_a = evaluate_frame(model_a, tokenizer_a, frame, "a", max_length).predictions
    table_b = evaluate_frame(model_b, tokenizer_b, frame, "b", max_length).predictions
    return diff_predictions(table_a, table_b)


def diff_runs(run_a: Path, run_b: Path, split: str = "holdout") -> RunDiff:
    """Compare the predictions two run folders recorded for SPLIT (`workbench eval RUN --split SPLIT`)."""
    from workbench.core.evaluation.evaluate import predictions_file

    tables = []
    for run in (run_a, run_b):
        path = predictions_file(run, split)
        if not path.is_file():
            raise DiffError(
                f"{run.name}: no predictions recorded for {split}; run `workbench eval {run.name} "
                f"--split {split}` first"
            )
        tables.append(read_predictions(path))
    return diff_predictions(tables[0], tables[1], run_a.name, run_b.name)
