"""Which sentences a run trained on, kept in its folder: the one answer for the map, the neighbour index, a
resume and `runs`.

- `train_rows.tsv`: a header, then one line per training row in training-row order (row i is the map's row i):
  line (in the training file), label (as trained: flipped by an override where one said so), source, sentence;
  text cells escaped as the label-overrides file escapes them.
- `train_rows.json`: how the rows were chosen, with counts (`TrainingData`).
- `overrides.tsv`: the overrides file as the run applied it (a copy: the user's file may change after).

A run trained before these files were written has none; its rows are its data's training split, cut to its
train_limit, as they always were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from workbench.core.base.config import TrainConfig
from workbench.core.base.durable import write_bytes_atomic, write_json_atomic
from workbench.core.base.layout import CONFIG_FILE, RunError
from workbench.core.data.overrides import escape, unescape

if TYPE_CHECKING:
    import pandas as pd

TRAIN_ROWS_FILE = "train_rows.tsv"
TRAIN_DATA_FILE = "train_rows.json"
OVERRIDES_COPY = "overrides.tsv"
TRAIN_ROWS_COLUMNS = ("line", "label", "source", "sentence")


class OverridesApplied(TypedDict):
    """What a run's overrides file did to its training split."""

    file: str  # the file as given
    copy: str  # its copy in the run folder, as applied
    decisions: int
    flipped: int
    dropped: int
    kept: int
    in_validation: int  # decisions about validation sentences: not applied


class MapSubset(TypedDict):
    """The map regions a run trained on."""

    run: str  # the folder of the run whose map chose them
    regions: list[str]
    fraction: float
    selected: dict[str, int]  # sentences trained on, by region


class TrainingData(TypedDict, total=False):
    """How a run's training rows were chosen (train_rows.json)."""

    trained: int  # rows trained on
    split: int  # the training split's sentences before any choice
    overrides: OverridesApplied
    map: MapSubset
    train_limit: int  # the first N rows of the chosen ones (0: all)


def write_train_rows(run_dir: Path, frame: pd.DataFrame, summary: TrainingData) -> None:
    """RUN_DIR's train_rows.tsv (FRAME's rows in order) and train_rows.json (SUMMARY), each written whole."""
    lines = ["\t".join(TRAIN_ROWS_COLUMNS)]
    for line, label, source, sentence in zip(
        frame["line"].tolist(),
        frame["label"].tolist(),
        frame["source"].astype(str).tolist(),
        frame["sentence"].astype(str).tolist(),
        strict=True,
    ):
        lines.append(f"{int(line)}\t{int(label)}\t{escape(source)}\t{escape(sentence)}")
    write_bytes_atomic(run_dir / TRAIN_ROWS_FILE, ("\n".join(lines) + "\n").encode("utf-8"))
    write_json_atomic(run_dir / TRAIN_DATA_FILE, dict(summary))


def read_train_rows(run_dir: Path) -> pd.DataFrame | None:
    """RUN_DIR's recorded training rows (columns line, label, source, sentence, in training-row order), or None
    for a run that recorded none. RunError naming the file when it cannot be read."""
    import pandas as pd

    path = run_dir / TRAIN_ROWS_FILE
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: cannot read the run's training rows ({err})") from None
    if not lines or lines[0].rstrip("\r").split("\t") != list(TRAIN_ROWS_COLUMNS):
        raise RunError(f"{path}:1: not a training-rows file (the header is {', '.join(TRAIN_ROWS_COLUMNS)})")
    rows = []
    for number, text in enumerate(lines[1:], start=2):
        if not text:
            continue
        cells = text.split("\t")
        if len(cells) != len(TRAIN_ROWS_COLUMNS) or not cells[0].isdigit() or cells[1] not in ("0", "1"):
            raise RunError(f"{path}:{number}: not a training row (line, label 0 or 1, source, sentence)")
        rows.append((int(cells[0]), int(cells[1]), unescape(cells[2]), unescape(cells[3])))
    return pd.DataFrame(rows, columns=list(TRAIN_ROWS_COLUMNS))


def read_training_data(run_dir: Path) -> TrainingData | None:
    """RUN_DIR's train_rows.json, or None when it has none (or it cannot be read: a summary, not the rows)."""
    try:
        values = json.loads((run_dir / TRAIN_DATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) else None  # type: ignore[return-value]


def run_training_frame(run_dir: Path) -> pd.DataFrame:
    """The sentences RUN_DIR trained on, in training-row order (row i is its map's row i), with the labels it
    trained with: its train_rows.tsv, else (a run from before it was recorded) its data's training split cut to
    its train_limit. Columns source, label, sentence, line, as load_cola's frames."""
    from workbench.core.runs.lookup import load_run_data

    recorded = read_train_rows(run_dir)
    if recorded is not None:
        return recorded[["source", "label", "sentence", "line"]].assign(mark="")[
            ["source", "label", "mark", "sentence", "line"]
        ]
    config = TrainConfig.load(run_dir / CONFIG_FILE)
    frame = load_run_data(run_dir)["train"]
    if config.train_limit:
        frame = frame.iloc[: config.train_limit]
    return frame.reset_index(drop=True)


def training_data_text(summary: TrainingData | None) -> str:
    """How a run's sentences were chosen, in one line for `runs` and the run's details: '' for a run with neither
    overrides nor a map subset (its --train-limit shows in its settings)."""
    if not summary or not (summary.get("overrides") or summary.get("map")):
        return ""
    parts = []
    overrides = summary.get("overrides")
    if overrides:
        part = (
            f"overrides {Path(overrides['file']).name}: {overrides['flipped']} flipped, "
            f"{overrides['dropped']} dropped, {overrides['kept']} kept"
        )
        if overrides.get("in_validation"):
            part += f" ({overrides['in_validation']} in validation, not applied)"
        parts.append(part)
    subset = summary.get("map")
    if subset:
        chosen = ", ".join(f"{name} {count}" for name, count in subset["selected"].items())
        share = "" if subset["fraction"] == 1 else f", {subset['fraction']:g} of each"
        parts.append(f"map of {Path(subset['run']).name}: {chosen}{share}")
    if summary.get("train_limit"):
        parts.append(f"first {summary['train_limit']}")
    return f"trained on {summary.get('trained', 0)} of {summary.get('split', 0)} sentences: " + "; ".join(parts)
