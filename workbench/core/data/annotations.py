"""The grammatical annotation of CoLA's two development sets (Warstadt and Bowman 2019, arXiv:1901.03438):
63 minor features in 15 major ones, read strictly (DataError names the file, line and field) and matched
to the sentences of in_domain_dev and out_of_domain_dev (the holdout).

Matching: an annotation row matches the first unused dev-set row of its domain with the same sentence
(byte for byte after trimming), so the file's order does not matter and repeated sentences pair off in
order. On the shipped files 1039 of 1043 rows match; the other 4 are transcribed differently in the
annotation file ("1 gave Mary..." for "I gave Mary...", two with a stray comma, and one sentence that
is longer there) and are left out, with their line numbers in `AnnotationMatch.unmatched`. A row left
out is *written otherwise* when a dev-set sentence no row matched is close to it (difflib's ratio at
least WRITTEN_OTHERWISE, one such sentence per row), else *absent*: not in the data evaluated at all,
as when a dev set is partial."""

from __future__ import annotations

import difflib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.base.config import project_data_dir
from workbench.core.data.cola import ANNOTATIONS_FILE, DataError, _decode, _lines

DOMAINS = {"In": "in_domain_dev", "Out": "holdout"}  # the annotation's Domain column -> our split names
# why an annotation row matched no sentence (AnnotationMatch.unmatched's `reason`)
ABSENT = "absent"  # no sentence of the data evaluated is like it
WRITTEN_OTHERWISE = "written otherwise"  # a sentence nothing matched is close to it: transcribed differently
WRITTEN_OTHERWISE_RATIO = 0.75  # difflib ratio; the shipped file's 4 are at 0.79 to 0.99
LEADING = ["Source", "Domain", "Acceptability", "Sentence"]

# The paper's grouping (its Table 2): each major feature and its minor features, in the file's column order.
# A sentence has a major feature when it has any of its minor ones.
MAJOR_FEATURES: dict[str, tuple[str, ...]] = {
    "Simple": ("Simple",),
    "Predicate": ("Copula", "Pred/SC", "Result/Depictive"),
    "Adjunct": ("Particle", "VP Adjunct", "NP Adjunct", "Temporal", "Locative", "Misc"),
    "Argument Type": ("Oblique", "PP Arg-VP", "PPArg-NP/AP", "by-Phrase", "Expletive"),
    "Argument Alternation": ("High Arity", "Drop Arg", "Add Arg", "Passive"),
    "Imperative": ("Imperative",),
    "Binding": ("Binding:Refl", "Binding:Other"),
    "Question": ("Matrix Q", "Emb Q", "Complex QP", "RC", "Island"),
    "Complement Clause": ("CP Subj", "CP Arg VP", "CP Arg NP/AP", "Non-finite CP", "No C-izer", "Deep Embed"),
    "Auxiliary": ("Neg", "Modal", "Aux", "Psuedo-Aux"),
    "to-VP": ("Control", "Raising", "VP+Extract", "VP arg-NP/AP", "Non-finite VP Misc"),
    "N, Adj": ("Deverbal", "Rel NP", "Trans NP", "Compx NP", "NNCompd", "Rel Adj", "Trans Adj"),
    "S-Syntax": (
        "Dislocation",
        "Info Struc",
        "Frag/Paren",
        "Coord",
        "Subordinate/Cond",
        "Ellipsis/Anaphor",
        "S-Adjunct",
    ),
    "Determiner": ("Quantifier", "Partitive", "NPI/FCI", "Comparative"),
    "Violations": ("Sem  Violation", "Infl/Agr Violation", "Extra/Mising Expr"),  # the file's spellings
}
MINOR_FEATURES: tuple[str, ...] = tuple(minor for group in MAJOR_FEATURES.values() for minor in group)
MAJOR_OF = {minor: major for major, group in MAJOR_FEATURES.items() for minor in group}


def feature_name(column: str) -> str:
    """A column's name as shown (the file's double space in 'Sem  Violation' collapsed)."""
    return " ".join(column.split())


@dataclass
class Annotations:
    """The annotation file, read: one row per sentence (split, source, label, sentence, line) and a 0/1
    matrix of the minor features (rows x MINOR_FEATURES)."""

    path: Path
    rows: pd.DataFrame
    minor: np.ndarray = field(repr=False)

    def major(self) -> np.ndarray:
        """rows x MAJOR_FEATURES: 1 where the row has any of the major feature's minor features."""
        columns = []
        for group in MAJOR_FEATURES.values():
            indices = [MINOR_FEATURES.index(minor) for minor in group]
            columns.append(self.minor[:, indices].max(axis=1))
        return np.stack(columns, axis=1)


def annotations_path(data_folder: Path | str | None = None) -> Path:
    """The annotation file beside DATA_FOLDER's TSVs when it has one, else the bundled one (data/cola/)."""
    if data_folder:
        folder = Path(data_folder)
        for candidate in (folder / ANNOTATIONS_FILE, folder.parent / ANNOTATIONS_FILE):
            if candidate.is_file():
                return candidate
    return project_data_dir() / ANNOTATIONS_FILE


def load_annotations(path: Path | str | None = None) -> Annotations:
    """Read the annotation file (default: the bundled one). DataError on anything unexpected."""
    path = Path(path) if path else annotations_path()
    if not path.is_file():
        raise DataError(path, "no such annotation file (the grammatical annotations of the CoLA dev sets)")
    text = _decode(path, path.read_bytes())
    lines = _lines(text)
    if not lines:
        raise DataError(path, "is empty")
    header = lines[0].split("\t")
    if header[:4] != LEADING or tuple(header[4:]) != MINOR_FEATURES:
        expected = len(LEADING) + len(MINOR_FEATURES)
        raise DataError(
            path,
            f"not the CoLA grammatical annotation header (expected {expected} columns: "
            f"{', '.join(LEADING)}, then the 63 minor features from Simple to Extra/Mising Expr)",
            line=1,
        )
    rows, features = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            raise DataError(path, "blank line", line=number)
        cells = line.split("\t")
        if len(cells) != len(header):
            raise DataError(path, f"expected {len(header)} tab-separated columns, found {len(cells)}", line=number)
        source, domain, label, sentence = cells[:4]
        if domain not in DOMAINS:
            raise DataError(path, f"{domain!r} is not In or Out", line=number, field="Domain")
        if label not in ("0", "1"):
            raise DataError(path, f"{label!r} is not 0 or 1", line=number, field="Acceptability")
        values = cells[4:]
        for name, value in zip(MINOR_FEATURES, values, strict=True):
            if value not in ("0", "1"):
                raise DataError(path, f"{value!r} is not 0 or 1", line=number, field=feature_name(name))
        rows.append((DOMAINS[domain], source.strip(), int(label), sentence.strip(), number))
        features.append([int(v) for v in values])
    frame = pd.DataFrame(rows, columns=["split", "source", "label", "sentence", "line"])
    return Annotations(path, frame, np.asarray(features, dtype=np.int8).reshape(len(rows), len(MINOR_FEATURES)))


@dataclass
class AnnotationMatch:
    """Annotation rows matched to one dev set: `dev_index[i]` is the dev-set row of annotation row
    `annotation_index[i]`; `unmatched` the annotation rows of that split that matched no sentence, with
    their `reason` (ABSENT or WRITTEN_OTHERWISE) and, when written otherwise, the data's sentence (`in_data`)."""

    split: str
    annotation_index: np.ndarray
    dev_index: np.ndarray
    unmatched: pd.DataFrame

    @property
    def matched(self) -> int:
        return len(self.dev_index)


def match_annotations(annotations: Annotations, split: str, sentences: list[str]) -> AnnotationMatch:
    """Pair SPLIT's annotation rows with the dev set's SENTENCES (its rows, in order). DataError when
    none matches: the annotation file is not of this data."""
    free: dict[str, deque[int]] = defaultdict(deque)
    for index, sentence in enumerate(sentences):
        free[sentence.strip()].append(index)
    ours = annotations.rows.index[annotations.rows["split"] == split].to_numpy()
    annotation_index, dev_index, missing = [], [], []
    for row in ours:
        queue = free.get(annotations.rows.at[row, "sentence"])
        if queue:
            annotation_index.append(row)
            dev_index.append(queue.popleft())
        else:
            missing.append(row)
    if len(ours) and not annotation_index:
        raise DataError(
            annotations.path,
            f"no annotated sentence of {split} is in the data evaluated "
            f"({len(sentences)} sentences): the annotation file is of CoLA's dev sets only",
        )
    unmatched = annotations.rows.loc[missing].reset_index(drop=True)
    leftover = [sentence for queue in free.values() for sentence in [sentences[i].strip() for i in queue]]
    reasons, in_data = [], []
    for sentence in unmatched["sentence"]:
        close = difflib.get_close_matches(sentence, leftover, n=1, cutoff=WRITTEN_OTHERWISE_RATIO)
        if close:
            leftover.remove(close[0])  # one data sentence stands for one annotation row
        reasons.append(WRITTEN_OTHERWISE if close else ABSENT)
        in_data.append(close[0] if close else "")
    unmatched = unmatched.assign(reason=reasons, in_data=in_data)
    return AnnotationMatch(split, np.asarray(annotation_index, dtype=int), np.asarray(dev_index, dtype=int), unmatched)
