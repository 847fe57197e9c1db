"""CoLA data: strict loading with file:line errors, the seeded split, fetching, statistics."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import tempfile
import threading
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where a table is made: the CLI's parser and the TUI start without it
    import pandas as pd

from workbench.core.base.config import COLA_URL, project_data_dir

COLUMNS = ["source", "label", "mark", "sentence", "line"]
SPLIT_FILES = {
    "in_domain_train": "in_domain_train.tsv",
    "in_domain_dev": "in_domain_dev.tsv",
    "holdout": "out_of_domain_dev.tsv",
}
EXPECTED_ROWS = {"in_domain_train": 8551, "in_domain_dev": 527, "holdout": 516}
SPLIT_NAMES = ("train", "validation", "in_domain_dev", "holdout")  # the splits every face offers
FINAL_SPLITS = ("in_domain_dev", "holdout")  # scored after training, recorded in eval.json
# the grammatical annotation of both dev sets (core/data/annotations.py), kept beside the TSVs
ANNOTATIONS_FILE = "CoLA_grammatical_annotations_minor_features.tsv"


class DataError(Exception):
    """Bad input data; the message names the file, the line and the field."""

    def __init__(self, path: Path | str, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"{field}: " if field else ""
        super().__init__(f"{where}: {what}{message}")


def _decode(path: Path, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = len(_lines(raw[: err.start].decode("utf-8") + "x"))  # the line the bad bytes are on
        raise DataError(path, f"bytes {raw[err.start : err.start + 4]!r} are not UTF-8", line=line) from None
    return text.removeprefix("\ufeff")


def _label(path: Path, line: int, value: str) -> int:
    value = value.strip()
    if value not in ("0", "1"):
        raise DataError(path, f"{value!r} is not 0 or 1", line=line, field="label")
    return int(value)


def _sentence(path: Path, line: int, value: str) -> str:
    if "\x00" in value:
        raise DataError(path, "contains a NUL byte", line=line, field="sentence")
    value = value.strip()
    if not value:
        raise DataError(path, "is empty", line=line, field="sentence")
    return value


def _lines(text: str) -> list[str]:
    """Lines as editors and csv count them: split at \\n, \\r\\n or a lone \\r only (str.splitlines
    also splits at form feeds, U+2028 and others, which would shift every line number after them)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_text_lines(path: Path, what: str) -> tuple[str, list[str]]:
    """PATH's text (UTF-8, a bad byte named by its line) and its lines; DataError when it cannot be read
    or holds no WHAT ("sentences", "pairs")."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot be read ({err.strerror})") from None
    text = _decode(path, raw)
    lines = _lines(text)
    if not any(line.strip() for line in lines):
        raise DataError(path, f"is empty: no {what}")
    return text, lines


def _header_delimiter(first_line: str) -> str | None:
    """The delimiter of a header line naming `sentence` and `label`, or None for headerless CoLA TSV."""
    delimiter = "\t" if "\t" in first_line else ","
    try:
        cells = next(csv.reader([first_line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None
    names = {cell.strip().lower() for cell in cells}
    return delimiter if "sentence" in names and "label" in names else None


def load_table(path: Path | str) -> pd.DataFrame:
    """Load a CoLA TSV (source, label, mark, sentence; no header) or a CSV/TSV with a
    header naming `sentence` and `label` columns. Raises DataError, never skips a row."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file")
    if path.is_dir():
        raise DataError(path, "is a folder, not a data file")
    text, lines = read_text_lines(path, "sentences")
    delimiter = _header_delimiter(lines[0])
    if delimiter is not None:
        return _load_with_header(path, text, delimiter)
    rows: list[tuple[str, int, str, str, int]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if number == len(lines):
                continue
            raise DataError(path, "blank line", line=number)
        cells = line.split("\t")
        if len(cells) != 4:
            raise DataError(
                path,
                f"expected 4 tab-separated columns (source, label, mark, sentence), found {len(cells)}",
                line=number,
            )
        source, label, mark, sentence = cells
        rows.append(
            (source.strip(), _label(path, number, label), mark.strip(), _sentence(path, number, sentence), number)
        )
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS)


def _load_with_header(path: Path, text: str, delimiter: str) -> pd.DataFrame:
    # strict: an unclosed quote or text after a closing quote is an error, not silently mended
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
        if "label" not in header or "sentence" not in header:
            raise DataError(path, "the header must name the 'sentence' and 'label' columns", line=1)
        label_col, sentence_col = header.index("label"), header.index("sentence")
        source_col = header.index("source") if "source" in header else None
        rows = []
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(path, f"expected {len(header)} columns as in the header, found {len(row)}", line=number)
            source = row[source_col].strip() if source_col is not None else path.stem
            rows.append(
                (source, _label(path, number, row[label_col]), "", _sentence(path, number, row[sentence_col]), number)
            )
    except csv.Error as err:
        raise DataError(path, f"malformed CSV ({err})", line=reader.line_num) from None
    if not rows:
        raise DataError(path, "has a header but no sentences")
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS)


def find_cola_dir(folder: Path | str) -> Path:
    """The folder holding the three CoLA TSVs: FOLDER, FOLDER/raw or FOLDER/cola_public/raw."""
    folder = Path(folder)
    for candidate in (folder, folder / "raw", folder / "cola_public" / "raw"):
        if all((candidate / name).is_file() for name in SPLIT_FILES.values()):
            return candidate
    missing = ", ".join(SPLIT_FILES.values())
    raise DataError(folder, f"is not a CoLA folder: expected {missing} (or a raw/ folder holding them)")


@dataclass
class CoLA:
    """The four splits the workbench uses: train/validation (seeded split of
    in_domain_train), in_domain_dev, and holdout (out_of_domain_dev)."""

    folder: Path
    splits: dict[str, pd.DataFrame]

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.splits[name]


def split_train_validation(
    frame: pd.DataFrame, fraction: float = 0.1, seed: int = 2018
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded hold-out split, the seed notebook's `train_test_split(frame, test_size=0.1,
    random_state=2018)`, sentence for sentence: in one permutation drawn from numpy's RandomState(seed),
    the first ceil(fraction * n) are validation and the rest train, in that order (sklearn's ShuffleSplit;
    tests/core/test_data.py compares the two).
    Written with numpy so that showing the data does not import sklearn and scipy (2 s on 2 cores)."""
    import math

    import numpy as np

    n_validation = math.ceil(fraction * len(frame))
    if not 0 < n_validation < len(frame):
        raise ValueError(
            f"a validation fraction of {fraction} of {len(frame)} sentences leaves no "
            f"{'training' if n_validation else 'validation'} sentence"
        )
    order = np.random.RandomState(seed).permutation(len(frame))
    train, validation = frame.iloc[order[n_validation:]], frame.iloc[order[:n_validation]]
    return train.reset_index(drop=True), validation.reset_index(drop=True)


def load_cola(folder: Path | str | None = None, fraction: float = 0.1, seed: int = 2018) -> CoLA:
    """Load CoLA from a folder (default: the bundled copy) or a single data file.

    A single file is split into train/validation and also serves as the holdout
    and in-domain dev, so users can bring their own acceptability data.

    One process parses an unchanged file once (a training asks four times, a TUI
    session more): the result is kept by the files' identity and split settings,
    and every caller gets its own copy of the frames."""
    target = Path(folder) if folder else project_data_dir()
    if not target.exists():
        raise DataError(target, "no such file or folder")
    files = [target] if target.is_file() else [find_cola_dir(target) / file for file in SPLIT_FILES.values()]
    key = (str(target.resolve()), tuple(_file_identity(path) for path in files), fraction, seed)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is None:
        cached = _parse_cola(target, fraction, seed)
        with _CACHE_LOCK:
            _CACHE[key] = cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
    return CoLA(cached.folder, {name: frame.copy() for name, frame in cached.splits.items()})


_CACHE: dict[tuple[Any, ...], CoLA] = {}  # oldest first; parsed frames nobody outside this module holds
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()  # the TUI's workers load from threads


def _file_identity(path: Path) -> tuple[str, int, int, int, str]:
    """What makes a parsed file stale: its resolved path, size, mtime and inode, and a digest of its
    bytes (an in-place rewrite within one tick of the filesystem's clock keeps size and mtime)."""
    stat = path.stat()
    try:
        digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    except OSError:
        digest = ""  # unreadable: load_table says why
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, digest


def _parse_cola(target: Path, fraction: float, seed: int) -> CoLA:
    if target.is_file():
        frame = load_table(target)
        if len(frame) < 2:
            raise DataError(target, f"has {len(frame)} sentence; at least 2 are needed to split off validation")
        train, validation = split_train_validation(frame, fraction, seed)
        return CoLA(target, {"train": train, "validation": validation, "in_domain_dev": frame, "holdout": frame})
    cola_dir = find_cola_dir(target)
    tables = {name: load_table(cola_dir / file) for name, file in SPLIT_FILES.items()}
    train, validation = split_train_validation(tables["in_domain_train"], fraction, seed)
    return CoLA(
        cola_dir,
        {
            "train": train,
            "validation": validation,
            "in_domain_dev": tables["in_domain_dev"],
            "holdout": tables["holdout"],
        },
    )


def data_digest(folder: Path | str | None = None) -> str:
    """A short content digest of the data `load_cola(FOLDER)` reads (its file, or its three TSVs): the
    same data on two machines gives the same digest wherever it lies."""
    import hashlib

    target = Path(folder) if folder else project_data_dir()
    if not target.exists():
        raise DataError(target, "no such file or folder")
    files = [target] if target.is_file() else [find_cola_dir(target) / name for name in SPLIT_FILES.values()]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return "sha256:" + digest.hexdigest()[:16]


def fetch(source: str = COLA_URL, dest: Path | str | None = None) -> dict[str, int]:
    """Get the CoLA release from a URL, a local zip or a folder into DEST (default:
    the bundled folder), after checking every file parses. Returns rows per split.
    DEST is replaced only when the new copy is whole."""
    dest = Path(dest) if dest else project_data_dir()
    with tempfile.TemporaryDirectory(prefix="cola-fetch-") as tmp:
        tmpdir = Path(tmp)
        origin = Path(source)
        if source.startswith(("http://", "https://")):
            archive = tmpdir / "cola.zip"
            try:
                with urllib.request.urlopen(source, timeout=60) as response, archive.open("wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as err:
                raise DataError(source, f"download failed ({err})") from None
            origin = archive
        if origin.is_file():
            try:
                with zipfile.ZipFile(origin) as zf:
                    zf.extractall(tmpdir / "unzipped")
            except zipfile.BadZipFile:
                raise DataError(source, "is not a zip archive") from None
            origin = tmpdir / "unzipped"
        elif not origin.exists():
            raise DataError(source, "no such file or folder")
        cola_dir = find_cola_dir(origin)
        counts = {name: len(load_table(cola_dir / file)) for name, file in SPLIT_FILES.items()}
        staged = tmpdir / "staged"
        staged.mkdir()
        for file in SPLIT_FILES.values():
            shutil.copy2(cola_dir / file, staged / file)
        for readme in (cola_dir / "README", cola_dir.parent / "README"):
            if readme.is_file():
                shutil.copy2(readme, staged / "README")
                break
        for annotations in (cola_dir / ANNOTATIONS_FILE, dest / ANNOTATIONS_FILE):  # the new copy's, else kept
            if annotations.is_file():
                shutil.copy2(annotations, staged / ANNOTATIONS_FILE)
                break
        dest.parent.mkdir(parents=True, exist_ok=True)
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        shutil.copytree(staged, dest)
        shutil.rmtree(old, ignore_errors=True)
    return counts


def token_lengths(tokenizer: Any, sentences: Sequence[str]) -> list[int]:
    """WordPiece tokens per sentence, [CLS] and [SEP] included, untruncated."""
    encoded = tokenizer(list(sentences), add_special_tokens=True, truncation=False)["input_ids"]
    return [len(ids) for ids in encoded]


def describe(frame: pd.DataFrame, lengths: Sequence[int] | None = None) -> dict[str, Any]:
    """Rows, label balance, per-source counts and token-length percentiles of a split."""
    total = len(frame)
    positives = int(frame["label"].sum())
    stats: dict[str, Any] = {
        "rows": total,
        "acceptable": positives,
        "unacceptable": total - positives,
        "acceptable_share": positives / total if total else 0.0,
        "sources": {str(k): int(v) for k, v in frame["source"].value_counts().sort_index().items()},
    }
    if lengths is not None and len(lengths):
        import pandas as pd

        series = pd.Series(list(lengths))
        stats["token_lengths"] = {
            "mean": float(series.mean()),
            **{f"p{q}": int(series.quantile(q / 100, interpolation="higher")) for q in (50, 90, 99)},
            "max": int(series.max()),
        }
    return stats
