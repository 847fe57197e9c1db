"""The label-overrides file: a plain TSV of the user's decisions about training sentences, applied when a run
prepares its data.

One line per decided sentence, after a header::

    line<TAB>sentence<TAB>old_label<TAB>decision<TAB>note

`line` is the sentence's line number in the training file (in_domain_train.tsv, or the run's own data file),
the frames' `line` column; `sentence` is its text and `old_label` its label there (0 or 1), both checked
against the data when the file is applied, so a file made for other data stops instead of changing the wrong
sentence. `decision` is flip (train on the other label), drop (leave the sentence out) or keep (reviewed,
unchanged); `note` is free text. A tab, a newline, a carriage return or a backslash in a text column is
written as \\t, \\n, \\r or \\\\. Lines are written sorted by `line`; the note column may be left out.

Decisions apply to the training split only: a decided sentence that the seeded split put in validation is left
as it is (validation measures the data as published) and counted as not applied."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.base.durable import write_bytes_atomic
from workbench.core.data.cola import DataError, _decode, _lines

if TYPE_CHECKING:
    import pandas as pd

DECISIONS = ("flip", "drop", "keep")
HEADER = ("line", "sentence", "old_label", "decision", "note")
HEADER_LINE = "\t".join(HEADER)

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_WRITE_LOCK = threading.Lock()  # set_override and remove_override read, change and write the file as one step


@dataclass(frozen=True)
class Override:
    """One decision about one training sentence."""

    line: int  # the sentence's line number in the training file (the frames' `line` column)
    sentence: str  # its text, checked against the data when applied
    old_label: int  # its label in the data file (0 or 1), checked too
    decision: str  # flip | drop | keep
    note: str = ""
    file_line: int = field(default=0, compare=False, repr=False)  # where read_overrides found it; 0 when made

    @property
    def new_label(self) -> int | None:
        """The label the sentence trains with: the other one when flipped, None when dropped."""
        if self.decision == "drop":
            return None
        return 1 - self.old_label if self.decision == "flip" else self.old_label


@dataclass(frozen=True)
class OverrideCounts:
    """What applying an overrides file did to a run's training split."""

    flipped: int = 0
    dropped: int = 0
    kept: int = 0
    in_validation: int = 0  # decisions about sentences the split put in validation: not applied

    @property
    def applied(self) -> int:
        return self.flipped + self.dropped + self.kept

    def describe(self) -> str:
        """One line for a run's log: '2 flipped, 1 dropped, 0 kept; 3 in the validation split, not applied'."""
        text = f"{self.flipped} flipped, {self.dropped} dropped, {self.kept} kept"
        if self.in_validation == 1:
            text += "; 1 falls in the validation split and is not applied"
        elif self.in_validation:
            text += f"; {self.in_validation} fall in the validation split and are not applied"
        return text


def escape(text: str) -> str:
    """TEXT for one TSV cell: tabs, newlines, carriage returns and backslashes as two-character escapes."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def unescape(text: str) -> str:
    """escape undone; a backslash before any other character is kept as typed."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _UNESCAPES:
            out.append(_UNESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _problem(override: Override) -> str | None:
    """What makes OVERRIDE unwritable, or None."""
    if isinstance(override.line, bool) or not isinstance(override.line, int) or override.line < 1:
        return f"line {override.line!r} is not a line number (1 or more)"
    if override.old_label not in (0, 1) or isinstance(override.old_label, bool):
        return f"old_label {override.old_label!r} is not 0 or 1"
    if override.decision not in DECISIONS:
        return f"decision {override.decision!r} is not one of {', '.join(DECISIONS)}"
    if not override.sentence.strip():
        return "the sentence is empty"
    return None


def read_overrides(path: Path | str) -> list[Override]:
    """The decisions in PATH in file order; DataError naming the file and line on any bad line. A missing
    file is an error; an empty one, or one with only its header, holds no decisions."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such overrides file")
    if path.is_dir():
        raise DataError(path, "is a folder, not an overrides file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot be read ({err.strerror})") from None
    lines = _lines(_decode(path, raw))
    if not any(line.strip() for line in lines):
        return []
    header = [cell.strip().lower() for cell in lines[0].split("\t")]
    if header not in (list(HEADER), list(HEADER[:-1])):
        raise DataError(path, f"the first line must be the header {HEADER_LINE!r}", line=1)
    overrides: list[Override] = []
    seen: dict[int, int] = {}  # sentence line -> file line
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        override = _parse_line(path, number, text)
        if override.line in seen:
            raise DataError(
                path, f"line {override.line} is decided twice (also on line {seen[override.line]})", line=number
            )
        seen[override.line] = number
        overrides.append(override)
    return overrides


def _parse_line(path: Path, number: int, text: str) -> Override:
    cells = text.split("\t")
    if len(cells) not in (4, 5):
        raise DataError(
            path,
            f"expected 5 tab-separated columns ({', '.join(HEADER)}; the note may be left out), found {len(cells)}",
            line=number,
        )
    line_text, sentence, label_text, decision = (cell.strip() for cell in cells[:4])
    note = unescape(cells[4]) if len(cells) == 5 else ""
    if not line_text.isdigit() or int(line_text) < 1:
        raise DataError(path, f"{line_text!r} is not a line number (1 or more)", line=number, field="line")
    sentence = unescape(sentence)
    if not sentence:
        raise DataError(path, "is empty", line=number, field="sentence")
    if label_text not in ("0", "1"):
        raise DataError(path, f"{label_text!r} is not 0 or 1", line=number, field="old_label")
    if decision.lower() not in DECISIONS:
        raise DataError(path, f"{decision!r} is not one of {', '.join(DECISIONS)}", line=number, field="decision")
    return Override(int(line_text), sentence, int(label_text), decision.lower(), note, file_line=number)


def format_overrides(overrides: list[Override]) -> str:
    """The file's text for OVERRIDES: the header, then one line each, sorted by line. ValueError on a
    decision that cannot be written or two for one line."""
    lines = [HEADER_LINE]
    seen: set[int] = set()
    for override in sorted(overrides, key=lambda o: o.line):
        problem = _problem(override)
        if problem:
            raise ValueError(f"cannot write the decision for line {override.line}: {problem}")
        if override.line in seen:
            raise ValueError(f"two decisions for line {override.line}")
        seen.add(override.line)
        cells = [str(override.line), escape(override.sentence.strip()), str(override.old_label)]
        lines.append("\t".join([*cells, override.decision, escape(override.note)]))
    return "\n".join(lines) + "\n"


def write_overrides(path: Path | str, overrides: list[Override]) -> None:
    """Write PATH whole (a temporary file, synced, renamed over it): the header and OVERRIDES sorted by line."""
    path = Path(path)
    write_bytes_atomic(path, format_overrides(overrides).encode("utf-8"))


def set_override(path: Path | str, override: Override) -> list[Override]:
    """Add OVERRIDE to PATH, or replace the decision already there for its line; PATH is made when missing.
    Returns the file's decisions, sorted by line."""
    path = Path(path)
    problem = _problem(override)
    if problem:
        raise ValueError(f"cannot write the decision for line {override.line}: {problem}")
    with _WRITE_LOCK:
        current = read_overrides(path) if path.exists() else []
        updated = sorted([o for o in current if o.line != override.line] + [override], key=lambda o: o.line)
        write_overrides(path, updated)
    return updated


def remove_override(path: Path | str, line: int) -> list[Override]:
    """Undo: PATH without the decision for LINE (unchanged when it has none). Returns its decisions,
    sorted by line."""
    path = Path(path)
    with _WRITE_LOCK:
        if not path.exists():
            return []
        current = read_overrides(path)
        updated = sorted([o for o in current if o.line != line], key=lambda o: o.line)
        if len(updated) != len(current):
            write_overrides(path, updated)
    return updated


def check_overrides(
    data_frame: pd.DataFrame, overrides: list[Override], path: Path | str, data_name: str = "the training file"
) -> None:
    """DataError naming PATH and the override's line unless every decision's line is in DATA_FRAME (the
    whole training file: its training and validation rows) with the same sentence and label."""
    by_line = {int(line): (str(sentence), int(label)) for line, sentence, label in _rows(data_frame)}
    seen: dict[int, int] = {}
    for override in overrides:
        where = override.file_line or None
        if override.line in seen:
            raise DataError(path, f"line {override.line} is decided twice", line=where)
        seen[override.line] = override.file_line
        if override.line not in by_line:
            raise DataError(path, f"{data_name} has no line {override.line}", line=where, field="line")
        sentence, label = by_line[override.line]
        if override.sentence.strip() != sentence:
            raise DataError(
                path,
                f"{override.sentence.strip()!r} is not the sentence on line {override.line} of {data_name} "
                f"({sentence!r}); the data changed since the decision",
                line=where,
                field="sentence",
            )
        if override.old_label != label:
            raise DataError(
                path,
                f"{override.old_label} is not the label of line {override.line} in {data_name} ({label})",
                line=where,
                field="old_label",
            )


def _rows(frame: pd.DataFrame) -> list[tuple[int, str, int]]:
    return list(zip(frame["line"].tolist(), frame["sentence"].tolist(), frame["label"].tolist(), strict=True))


def apply_overrides(
    train_frame: pd.DataFrame,
    overrides: list[Override],
    path: Path | str,
    validation_frame: pd.DataFrame | None = None,
    data_name: str = "the training file",
) -> tuple[pd.DataFrame, OverrideCounts]:
    """TRAIN_FRAME with OVERRIDES applied: flipped rows trained with the other label, dropped rows left out,
    kept rows unchanged; the row order otherwise kept, the index renumbered. Each decision is checked first
    (check_overrides) against TRAIN_FRAME and VALIDATION_FRAME together, the whole training file: one about
    a validation row is counted in `in_validation` and not applied; without VALIDATION_FRAME such a line is
    unknown. DataError on any mismatch, before anything is applied."""
    import pandas as pd

    whole = train_frame if validation_frame is None else pd.concat([train_frame, validation_frame])
    check_overrides(whole, overrides, path, data_name)
    train_lines = set(int(line) for line in train_frame["line"].tolist())
    decisions = {o.line: o.decision for o in overrides if o.line in train_lines}
    flip = [decisions.get(int(line)) == "flip" for line in train_frame["line"].tolist()]
    drop = [decisions.get(int(line)) == "drop" for line in train_frame["line"].tolist()]
    frame = train_frame.copy()
    frame.loc[flip, "label"] = 1 - frame.loc[flip, "label"]
    frame = frame.loc[[not d for d in drop]].reset_index(drop=True)
    counts = OverrideCounts(
        flipped=sum(flip),
        dropped=sum(drop),
        kept=sum(1 for d in decisions.values() if d == "keep"),
        in_validation=len(overrides) - len(decisions),
    )
    return frame, counts
