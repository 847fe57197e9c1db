"""Which grammar a model gets right: MCC per grammatical feature of CoLA's dev sets (Warstadt and Bowman
2019), with 95% bootstrap intervals, from a run's recorded predictions.

The groups are small (Frag/Paren has 9 sentences, Imperative 12): every figure comes with its n and an
interval, and a feature whose sentences are all of one gold label is marked `one_class` (its MCC is 0 by
convention, whatever the model does). The bootstrap resamples each feature's sentences with replacement
(RESAMPLES times, seeded, vectorised) and takes the 2.5th and 97.5th percentiles of the MCC."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.data.annotations import (
    ABSENT,
    MAJOR_FEATURES,
    MAJOR_OF,
    MINOR_FEATURES,
    WRITTEN_OTHERWISE,
    Annotations,
    feature_name,
    load_annotations,
    match_annotations,
)

RESAMPLES = 1000
SEED = 2019
PHENOMENA_SPLITS = ("in_domain_dev", "holdout", "both")


def mcc_counts(tp: np.ndarray, tn: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Matthews correlation from confusion counts (arrays), 0 where a margin is empty (sklearn's convention)."""
    tp, tn, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, tn, fp, fn))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (tp * tn - fp * fn) / denominator
    return np.where(denominator > 0, value, 0.0)


def mcc(labels: np.ndarray, predicted: np.ndarray) -> float:
    y, p = np.asarray(labels, dtype=bool), np.asarray(predicted, dtype=bool)
    return float(mcc_counts((y & p).sum(), (~y & ~p).sum(), (~y & p).sum(), (y & ~p).sum()))


def bootstrap_mcc(
    labels: np.ndarray,
    predicted: np.ndarray,
    resamples: int = RESAMPLES,
    rng: np.random.Generator | None = None,
    others: np.ndarray | None = None,
) -> np.ndarray:
    """MCC of RESAMPLES resamples (with replacement) of the sentences, one per row; with OTHERS (a second
    model's predictions of the same sentences) the paired difference MCC(others) - MCC(predicted)."""
    rng = rng or np.random.default_rng(SEED)
    n = len(labels)
    if n == 0:
        return np.zeros(resamples)
    picks = rng.integers(0, n, size=(resamples, n))
    y = np.asarray(labels, dtype=bool)[picks]

    def resampled(pred: np.ndarray) -> np.ndarray:
        p = np.asarray(pred, dtype=bool)[picks]
        return mcc_counts((y & p).sum(1), (~y & ~p).sum(1), (~y & p).sum(1), (y & ~p).sum(1))

    values = resampled(predicted)
    return values if others is None else resampled(others) - values


@dataclass
class PhenomenonScore:
    feature: str
    kind: str  # major | minor
    major: str  # the major feature of a minor one (itself for a major one)
    n: int
    acceptable: int  # of the n, gold acceptable
    mcc: float
    accuracy: float
    mcc_low: float  # 95% bootstrap interval
    mcc_high: float
    one_class: bool  # every sentence has one gold label: MCC says nothing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PhenomenaReport:
    """Scores per feature, on one dev set or both; `table` holds the matched sentences (split, sentence,
    label, predicted, p_acceptable) and `members[feature]` the rows of `table` that have the feature."""

    split: str
    scores: list[PhenomenonScore]
    table: pd.DataFrame = field(repr=False)
    members: dict[str, np.ndarray] = field(repr=False)
    matched: dict[str, int]
    unmatched: list[dict[str, Any]]  # annotation rows matching no dev sentence: split, line, sentence, reason
    # (core.data.annotations' ABSENT or WRITTEN_OTHERWISE) and, written otherwise, the data's sentence (in_data)
    annotation_file: str
    resamples: int = RESAMPLES

    def score(self, feature: str) -> PhenomenonScore:
        return next(s for s in self.scores if s.feature == feature)

    def left_out(self, reason: str) -> list[dict[str, Any]]:
        """The annotation rows left out for REASON (ABSENT or WRITTEN_OTHERWISE), in the file's order."""
        return [row for row in self.unmatched if row.get("reason") == reason]

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "annotation_file": self.annotation_file,
            "matched": self.matched,
            "absent": len(self.left_out(ABSENT)),
            "written_otherwise": len(self.left_out(WRITTEN_OTHERWISE)),
            "unmatched": self.unmatched,
            "resamples": self.resamples,
            "interval": "95% bootstrap (percentile)",
            "features": [s.to_dict() for s in self.scores],
        }


def feature_matrix(annotations: Annotations) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """Names, kinds and majors of every feature (the 15 major ones, then the 63 minor ones) and the
    rows x features 0/1 matrix."""
    names = list(MAJOR_FEATURES) + [feature_name(m) for m in MINOR_FEATURES]
    kinds = ["major"] * len(MAJOR_FEATURES) + ["minor"] * len(MINOR_FEATURES)
    majors = list(MAJOR_FEATURES) + [MAJOR_OF[m] for m in MINOR_FEATURES]
    return names, kinds, majors, np.concatenate([annotations.major(), annotations.minor], axis=1)


def score_features(
    labels: np.ndarray,
    predicted: np.ndarray,
    features: np.ndarray,
    names: list[str],
    kinds: list[str] | None = None,
    majors: list[str] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> list[PhenomenonScore]:
    """One score per column of FEATURES (sentences x features, 0/1) over LABELS and PREDICTED (0/1)."""
    labels, predicted = np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)
    kinds = kinds or ["minor"] * len(names)
    majors = majors or list(names)
    scores = []
    for column, name in enumerate(names):
        rows = np.flatnonzero(features[:, column])
        y, p = labels[rows], predicted[rows]
        n = len(rows)
        samples = bootstrap_mcc(y, p, resamples, np.random.default_rng([seed, column]))
        low, high = np.percentile(samples, [2.5, 97.5]) if n else (0.0, 0.0)
        scores.append(
            PhenomenonScore(
                feature=name,
                kind=kinds[column],
                major=majors[column],
                n=n,
                acceptable=int(y.sum()),
                mcc=mcc(y, p),
                accuracy=float((y == p).mean()) if n else 0.0,
                mcc_low=float(low),
                mcc_high=float(high),
                one_class=n > 0 and len(set(y.tolist())) < 2,
            )
        )
    return scores


def _matched_table(
    predictions: dict[str, pd.DataFrame], annotations: Annotations
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int], list[dict[str, Any]]]:
    names, _, _, matrix = feature_matrix(annotations)
    tables, rows, matched, unmatched = [], [], {}, []
    for split, frame in predictions.items():
        match = match_annotations(annotations, split, frame["sentence"].astype(str).tolist())
        part = frame.iloc[match.dev_index][["sentence", "label", "predicted", "p_acceptable"]].copy()
        part.insert(0, "split", split)
        part["dev_row"] = match.dev_index
        tables.append(part)
        rows.append(matrix[match.annotation_index])
        matched[split] = match.matched
        unmatched += [
            {
                "split": split,
                "line": int(r.line),
                "sentence": r.sentence,
                "reason": r.reason,
                **({"in_data": r.in_data} if r.in_data else {}),
            }
            for r in match.unmatched.itertuples()
        ]
    table = pd.concat(tables, ignore_index=True)
    return table, np.concatenate(rows, axis=0), matched, unmatched


def phenomena_from_predictions(
    predictions: dict[str, pd.DataFrame],
    annotations: Annotations | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> PhenomenaReport:
    """Scores per feature over PREDICTIONS (split name -> its predictions table, the dev set's rows with
    sentence, label, predicted, p_acceptable); several splits are pooled."""
    annotations = annotations or load_annotations()
    names, kinds, majors, _ = feature_matrix(annotations)
    table, features, matched, unmatched = _matched_table(predictions, annotations)
    scores = score_features(
        table["label"].to_numpy(), table["predicted"].to_numpy(), features, names, kinds, majors, resamples, seed
    )
    members = {name: np.flatnonzero(features[:, i]) for i, name in enumerate(names)}
    split = "both" if len(predictions) > 1 else next(iter(predictions))
    return PhenomenaReport(split, scores, table, members, matched, unmatched, str(annotations.path), resamples)


def splits_of(split: str) -> tuple[str, ...]:
    if split not in PHENOMENA_SPLITS:
        raise ValueError(f"split: one of {', '.join(PHENOMENA_SPLITS)}")
    return ("in_domain_dev", "holdout") if split == "both" else (split,)


def recorded_phenomena(run_dir: Path, split: str = "both", annotations: Annotations | None = None) -> PhenomenaReport:
    """Scores per feature from RUN_DIR's recorded predictions on SPLIT (in_domain_dev, holdout or both).
    RunError naming the missing evaluation when one is not recorded (`workbench eval RUN --split S`)."""
    from workbench.core.base.layout import RunError
    from workbench.core.evaluation.recorded import load_recorded

    predictions = {}
    for name in splits_of(split):
        recorded = load_recorded(run_dir, name)
        if recorded is None:
            raise RunError(
                f"{run_dir}: no recorded evaluation on {name}; run `workbench eval {run_dir.name} --split {name}` first"
            )
        predictions[name] = recorded.predictions
    return phenomena_from_predictions(predictions, annotations)


@dataclass
class PhenomenonChange:
    """Run B against run A on one feature: the MCC of each, B - A with a paired 95% bootstrap interval."""

    feature: str
    kind: str
    n: int
    mcc_a: float
    mcc_b: float
    delta: float
    delta_low: float
    delta_high: float
    one_class: bool

    @property
    def verdict(self) -> str:
        if self.one_class or self.n == 0:
            return "one class"
        if self.delta_low == self.delta_high == 0:
            return "same"
        if self.delta_low > 0:
            return "B better"
        if self.delta_high < 0:
            return "B worse"
        return "unclear"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def compare_phenomena(
    report_a: PhenomenaReport, report_b: PhenomenaReport, resamples: int = RESAMPLES, seed: int = SEED
) -> list[PhenomenonChange]:
    """Per feature, B's MCC against A's on the same sentences (paired resamples). ValueError when the two
    reports are not of the same sentences and labels."""
    a, b = report_a.table, report_b.table
    if (
        len(a) != len(b)
        or not (a["sentence"].to_numpy() == b["sentence"].to_numpy()).all()
        or not (a["label"].to_numpy() == b["label"].to_numpy()).all()
    ):
        raise ValueError("the two runs' recorded predictions are not of the same sentences and labels")
    changes = []
    for column, score in enumerate(report_a.scores):
        rows = report_a.members[score.feature]
        y = a["label"].to_numpy()[rows]
        pa, pb = a["predicted"].to_numpy()[rows], b["predicted"].to_numpy()[rows]
        samples = bootstrap_mcc(y, pa, resamples, np.random.default_rng([seed, column]), others=pb)
        low, high = np.percentile(samples, [2.5, 97.5]) if len(rows) else (0.0, 0.0)
        mcc_a, mcc_b = mcc(y, pa), mcc(y, pb)
        changes.append(
            PhenomenonChange(
                score.feature,
                score.kind,
                len(rows),
                mcc_a,
                mcc_b,
                mcc_b - mcc_a,
                float(low),
                float(high),
                score.one_class,
            )
        )
    return changes
