"""Likely label errors in the training split, by confident learning (Northcutt et al. 2021, the `cleanlab`
library), set beside the map of the training data (core/explore/cartography.py).

Confident learning needs every training sentence's p(label) from a model that never trained on it: K
fine-tunes, each on the training split minus one fold, each predicting its own fold (core/search/out_of_fold.py
trains them). This module holds what needs no training: the seeded, label-stratified fold assignment, the
out-of-fold table and its file, cleanlab's ranking, the join with a run's map by the sentence's `line` in the
training file, the agreement of the two methods, and the saved issues file with its reader (`read_label_issues`,
which the TUI's issues view calls).

Files, all in the group folder of the K fold runs:

- `out_of_fold.tsv`: line, sentence, label, fold, p_acceptable, one row per training sentence;
- `label_issues.tsv`: cleanlab's issues, most likely first: rank, line, sentence, label, p_label, quality,
  fold, region, map_confidence (region and map_confidence empty where the map has no such sentence);
- `label_issues.json`: the same with the counts and the agreement with the map, as `data issues --json`
  prints it.

Text cells escape tabs, newlines, carriage returns and backslashes as the label-overrides file does."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.core.base.durable import write_bytes_atomic, write_json_atomic
from workbench.core.base.layout import RunError
from workbench.core.data.overrides import escape, unescape

if TYPE_CHECKING:
    import pandas as pd

    from workbench.core.explore.cartography import TrainingMap

OUT_OF_FOLD_FILE = "out_of_fold.tsv"
ISSUES_FILE = "label_issues.tsv"
REPORT_FILE = "label_issues.json"
OUT_OF_FOLD_COLUMNS = ("line", "sentence", "label", "fold", "p_acceptable")
ISSUE_COLUMNS = ("rank", "line", "sentence", "label", "p_label", "quality", "fold", "region", "map_confidence")
# a fold run's TrainConfig.extra[OUT_OF_FOLD_KEY]: its group, fold and folds; such a run is never "the map"
OUT_OF_FOLD_KEY = "out_of_fold"
RANKED_BY = "self_confidence"  # cleanlab's score: p(given label), out of fold
HARD = "hard"


class LabelIssuesError(RunError):
    """Label issues that cannot be found or read as asked (bad K, no map, a damaged file)."""


# ---------------------------------------------------------------- folds


def check_folds(folds: int, labels: np.ndarray) -> None:
    """LabelIssuesError unless FOLDS can split LABELS with both labels in every fold's training part."""
    if folds < 2:
        raise LabelIssuesError(f"--folds {folds}: at least 2 (each fold's model trains on the other folds)")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
    if counts.min() == 0:
        raise LabelIssuesError("the training split has only one label: there is nothing to tell apart")
    if folds > counts.min():
        which = "unacceptable" if counts[0] < counts[1] else "acceptable"
        raise LabelIssuesError(
            f"--folds {folds}: the training split has only {counts.min()} {which} sentences, so at most "
            f"{counts.min()} folds can each hold one"
        )


def assign_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each sentence's fold (1..FOLDS), stratified by label and shuffled with SEED (sklearn's StratifiedKFold)."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, dtype=np.int64)
    check_folds(folds, labels)
    assignment = np.zeros(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels), start=1):
        assignment[held_out] = fold
    return assignment


# ---------------------------------------------------------------- TSV files


def _write_tsv(path: Path, columns: tuple[str, ...], rows: list[list[Any]]) -> None:
    lines = ["\t".join(columns)]
    for row in rows:
        lines.append("\t".join(escape("" if cell is None else str(cell)) for cell in row))
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))


def _read_tsv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelIssuesError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LabelIssuesError(f"{path}: cannot read it ({err})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or tuple(lines[0].split("\t")) != columns:
        raise LabelIssuesError(f"{path}:1: the header must be {chr(9).join(columns)!r}")
    records = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(columns):
            raise LabelIssuesError(
                f"{path}:{number}: expected {len(columns)} tab-separated columns, found {len(cells)}"
            )
        records.append({name: unescape(cell) for name, cell in zip(columns, cells, strict=True)})
    return records


def write_out_of_fold(path: Path, frame: pd.DataFrame) -> None:
    """FRAME's line, sentence, label, fold and p_acceptable columns as PATH (NaN p_acceptable: not yet predicted)."""
    rows = [
        [
            int(r.line),
            r.sentence,
            int(r.label),
            int(r.fold),
            "" if np.isnan(r.p_acceptable) else repr(float(r.p_acceptable)),
        ]
        for r in frame.itertuples()
    ]
    _write_tsv(path, OUT_OF_FOLD_COLUMNS, rows)


def read_out_of_fold(path: Path) -> pd.DataFrame:
    """PATH as a frame (line, sentence, label, fold, p_acceptable; NaN where not predicted yet)."""
    import pandas as pd

    records = _read_tsv(path, OUT_OF_FOLD_COLUMNS)
    try:
        return pd.DataFrame(
            {
                "line": [int(r["line"]) for r in records],
                "sentence": [r["sentence"] for r in records],
                "label": [int(r["label"]) for r in records],
                "fold": [int(r["fold"]) for r in records],
                "p_acceptable": [float(r["p_acceptable"]) if r["p_acceptable"] else np.nan for r in records],
            }
        )
    except ValueError as err:
        raise LabelIssuesError(f"{path}: not an out-of-fold table ({err})") from None


# ---------------------------------------------------------------- cleanlab


def rank_label_issues(labels: np.ndarray, p_acceptable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's label issues among LABELS given out-of-fold P_ACCEPTABLE: their indices, most likely an error
    first (ranked by self-confidence, p(given label)), and every sentence's label quality score."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    p_acceptable = np.asarray(p_acceptable, dtype=np.float64)
    if np.isnan(p_acceptable).any():
        raise LabelIssuesError(f"{int(np.isnan(p_acceptable).sum())} sentences have no out-of-fold probability yet")
    pred_probs = np.column_stack([1.0 - p_acceptable, p_acceptable])
    # n_jobs=1: no worker processes on a small shared machine; the result is the same
    ranked = find_label_issues(labels, pred_probs, return_indices_ranked_by=RANKED_BY, n_jobs=1)
    quality = get_label_quality_scores(labels, pred_probs, method=RANKED_BY)
    return np.asarray(ranked, dtype=np.int64), np.asarray(quality, dtype=np.float64)


# ---------------------------------------------------------------- the issues and the map


@dataclass
class LabelIssue:
    """One likely label error: its rank (1: most likely), its line in the training file, sentence and given
    label, its out-of-fold p(given label) and cleanlab's quality score, the fold that predicted it, and the
    map's region and confidence for the same sentence ("" and None where the map has no such sentence)."""

    rank: int
    line: int
    sentence: str
    label: int
    p_label: float
    quality: float
    fold: int
    region: str = ""
    map_confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Agreement:
    """cleanlab's issues against the map's hard-to-learn region, over the sentences both have."""

    map_run: str
    mapped: int  # training sentences with out-of-fold probabilities that the map has too
    hard: int  # the map's hard sentences among them
    issues_mapped: int  # cleanlab's issues the map has
    issues_in_hard: int  # cleanlab's issues in the map's hard region
    issues_by_region: dict[str, int] = field(default_factory=dict)

    @property
    def expected_in_hard(self) -> float:
        """Issues in hard if the two methods were unrelated: the issues times hard's share of the sentences."""
        return self.issues_mapped * self.hard / self.mapped if self.mapped else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "expected_in_hard": self.expected_in_hard}

    def lines(self) -> list[str]:
        """The agreement in words (at most 80 columns)."""

        def share(part: int, whole: int) -> str:
            return f"{part} of {whole}" + (f" ({part / whole:.0%})" if whole else "")

        regions = ", ".join(f"{name} {count}" for name, count in self.issues_by_region.items())
        return [
            f"agreement with the map of run {self.map_run} ({self.mapped} sentences in both):",
            f"  cleanlab's issues in the map's hard region: {share(self.issues_in_hard, self.issues_mapped)}"
            f", by chance {self.expected_in_hard:.1f}",
            f"  the map's hard sentences that cleanlab flags: {share(self.issues_in_hard, self.hard)}",
            f"  cleanlab's issues by region: {regions}",
        ]


@dataclass
class IssuesReport:
    """cleanlab's ranked issues over the training split's out-of-fold probabilities, with the map beside."""

    group: str
    folds: int
    sentences: int  # training sentences ranked (every one has an out-of-fold probability)
    issues: list[LabelIssue]
    agreement: Agreement | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "folds": self.folds,
            "sentences": self.sentences,
            "ranked_by": RANKED_BY,
            "issues_found": len(self.issues),
            "agreement": None if self.agreement is None else self.agreement.to_dict(),
            "issues": [issue.to_dict() for issue in self.issues],
        }


def _map_lookup(training_map: TrainingMap) -> dict[int, tuple[str, int, str, float]]:
    """The map's recorded sentences by their line in the training file: (sentence, label, region, confidence)."""
    table = training_map.table
    if "line" in table.columns:
        lines = table["line"].to_numpy()
    else:  # a map table from before it carried the line: the run's training sentences in row order have it
        from workbench.core.explore.cartography import training_sentences

        lines = training_sentences(training_map.run_dir)["line"].to_numpy()
    lookup = {}
    for line, r in zip(lines, table.itertuples(), strict=True):
        if int(r.epochs) > 0 and r.region:
            lookup[int(line)] = (str(r.sentence).strip(), int(r.label), str(r.region), float(r.confidence))
    return lookup


def map_beside(frame: pd.DataFrame, training_map: TrainingMap) -> tuple[list[str], list[float | None]]:
    """The map's region and confidence of each row of FRAME (line, sentence, label), joined by line; "" and None
    where the map has no such line, or has it with another sentence or label (other data, or overrides)."""
    lookup = _map_lookup(training_map)
    region: list[str] = []
    confidence: list[float | None] = []
    for line, sentence, label in zip(frame["line"], frame["sentence"], frame["label"], strict=True):
        found = lookup.get(int(line))
        if found is not None and found[0] == str(sentence).strip() and found[1] == int(label):
            region.append(found[2])
            confidence.append(found[3])
        else:
            region.append("")
            confidence.append(None)
    return region, confidence


def agreement(regions: list[str], is_issue: np.ndarray, map_run: str) -> Agreement:
    """How REGIONS (the map's, "" where it has none) and cleanlab's issues (IS_ISSUE, a mask) agree."""
    from workbench.core.explore.cartography import REGIONS

    region_array = np.asarray(regions, dtype=object)
    mapped = region_array != ""
    hard = region_array == HARD
    is_issue = np.asarray(is_issue, dtype=bool)
    return Agreement(
        map_run=map_run,
        mapped=int(mapped.sum()),
        hard=int(hard.sum()),
        issues_mapped=int((is_issue & mapped).sum()),
        issues_in_hard=int((is_issue & hard).sum()),
        issues_by_region={
            **{name: int((is_issue & (region_array == name)).sum()) for name in REGIONS},
            "not in the map": int((is_issue & ~mapped).sum()),
        },
    )


def label_issues(
    out_of_fold: pd.DataFrame, group: str, folds: int, training_map: TrainingMap | None = None
) -> IssuesReport:
    """cleanlab's issues over OUT_OF_FOLD (every row predicted), ranked, with TRAINING_MAP's region beside each
    and the agreement of the two methods (none without a map)."""
    labels = out_of_fold["label"].to_numpy()
    ranked, quality = rank_label_issues(labels, out_of_fold["p_acceptable"].to_numpy())
    p_label = np.where(labels == 1, out_of_fold["p_acceptable"], 1.0 - out_of_fold["p_acceptable"])
    if training_map is not None:
        regions, confidences = map_beside(out_of_fold, training_map)
    else:
        regions, confidences = [""] * len(out_of_fold), [None] * len(out_of_fold)
    issues = [
        LabelIssue(
            rank=rank,
            line=int(out_of_fold["line"].iat[index]),
            sentence=str(out_of_fold["sentence"].iat[index]),
            label=int(labels[index]),
            p_label=float(p_label[index]),
            quality=float(quality[index]),
            fold=int(out_of_fold["fold"].iat[index]),
            region=regions[index],
            map_confidence=confidences[index],
        )
        for rank, index in enumerate(ranked, start=1)
    ]
    together = None
    if training_map is not None:
        mask = np.zeros(len(out_of_fold), dtype=bool)
        mask[ranked] = True
        together = agreement(regions, mask, training_map.run_dir.name)
    return IssuesReport(group=group, folds=folds, sentences=len(out_of_fold), issues=issues, agreement=together)


def save_report(report: IssuesReport, folder: Path) -> Path:
    """REPORT as FOLDER's label_issues.tsv (the issues) and label_issues.json (everything); the TSV's path."""
    rows = [
        [
            issue.rank,
            issue.line,
            issue.sentence,
            issue.label,
            repr(issue.p_label),
            repr(issue.quality),
            issue.fold,
            issue.region,
            "" if issue.map_confidence is None else repr(issue.map_confidence),
        ]
        for issue in report.issues
    ]
    _write_tsv(folder / ISSUES_FILE, ISSUE_COLUMNS, rows)
    write_json_atomic(folder / REPORT_FILE, report.to_dict())
    return folder / ISSUES_FILE


def issues_file(path_or_runs_dir: Path | str) -> Path:
    """The issues file PATH_OR_RUNS_DIR names: the file itself, a group folder holding one, or a runs folder
    (then its most recently written one). LabelIssuesError when there is none."""
    path = Path(path_or_runs_dir)
    if path.is_file():
        return path
    if (path / ISSUES_FILE).is_file():
        return path / ISSUES_FILE
    found = (
        sorted(path.glob(f"*/{ISSUES_FILE}"), key=lambda p: (p.stat().st_mtime, p.parent.name)) if path.is_dir() else []
    )
    if not found:
        raise LabelIssuesError(f"{path}: no {ISSUES_FILE} (workbench data issues writes one)")
    return found[-1]


def read_label_issues(path_or_runs_dir: Path | str) -> list[LabelIssue]:
    """The saved label issues, most likely first: from a label_issues.tsv, a group folder holding one, or a
    runs folder (its most recently written one). LabelIssuesError names the file and line of anything wrong."""
    path = issues_file(path_or_runs_dir)
    issues = []
    for number, record in enumerate(_read_tsv(path, ISSUE_COLUMNS), start=2):
        try:
            issues.append(
                LabelIssue(
                    rank=int(record["rank"]),
                    line=int(record["line"]),
                    sentence=record["sentence"],
                    label=int(record["label"]),
                    p_label=float(record["p_label"]),
                    quality=float(record["quality"]),
                    fold=int(record["fold"]),
                    region=record["region"],
                    map_confidence=float(record["map_confidence"]) if record["map_confidence"] else None,
                )
            )
        except ValueError as err:
            raise LabelIssuesError(f"{path}:{number}: {err}") from None
    return issues


# ---------------------------------------------------------------- which run's map


def is_out_of_fold_run(config: dict[str, Any]) -> bool:
    """A run's saved config (a dict) is one of the fold runs of `data issues`."""
    extra = config.get("extra")
    return isinstance(extra, dict) and OUT_OF_FOLD_KEY in extra


def newest_mapped_run(runs_dir: Path) -> Path | None:
    """The newest finished run in RUNS_DIR that recorded a map of its training data, fold runs of `data issues`
    left out (their one-epoch maps of part of the data are no map of it); None when there is none."""
    from workbench.core.runs.dynamics import dynamics_path
    from workbench.core.runs.status import list_runs

    finished = [
        info
        for info in list_runs(Path(runs_dir))
        if info.status == "done" and dynamics_path(info.path).is_file() and not is_out_of_fold_run(info.config)
    ]
    if not finished:
        return None
    return max(finished, key=lambda info: (info.started, info.id)).path
