"""Training on a chosen part of the data, on the tiny BERT and the tiny CoLA: a label-overrides file's flips and
drops reach the rows trained on (train_rows.tsv, checked against the split read here), a map's regions choose the
sentences, a resume keeps the rows it started with, and the run's own map and a diff work on what it trained."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers.runs import TrainedRun, copy_run

from workbench.core.base.config import TrainConfig
from workbench.core.base.errors import TrainingError
from workbench.core.data.cola import DataError, load_cola
from workbench.core.runs.metrics import read_metrics
from workbench.core.training.train import train

HEADER = "line\tsentence\told_label\tdecision\tnote\n"


def rows_file(run_dir: Path) -> pd.DataFrame:
    """train_rows.tsv read with pandas alone (no workbench reader)."""
    return pd.read_csv(run_dir / "train_rows.tsv", sep="\t", quoting=3, keep_default_na=False)


def decide(path: Path, *decisions: tuple[Any, str, str]) -> Path:
    """An overrides file of (row of a split frame, decision, note)."""
    lines = [f"{int(r.line)}\t{r.sentence}\t{int(r.label)}\t{decision}\t{note}\n" for r, decision, note in decisions]
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def test_flipped_rows_train_with_the_other_label_and_dropped_rows_are_left_out(
    tiny_config: TrainConfig, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    cola = load_cola(tiny_cola_dir)
    train_split, validation = cola["train"], cola["validation"]
    flipped, dropped, kept = train_split.iloc[3], train_split.iloc[10], train_split.iloc[20]
    in_validation = validation.iloc[0]
    overrides = decide(
        tmp_path / "overrides.tsv",
        (flipped, "flip", "mislabelled"),
        (dropped, "drop", ""),
        (kept, "keep", "right as it is"),
        (in_validation, "flip", "validation: left alone"),
    )
    config = dataclasses.replace(tiny_config, overrides=str(overrides))
    result = train(config, tmp_path / "runs" / "fixed")
    assert result.status == "done"
    run = tmp_path / "runs" / "fixed"

    # expected by hand: the split's order without the dropped line, its first 96 (train_limit)
    expected = [int(line) for line in train_split["line"] if int(line) != int(dropped.line)][:96]
    rows = rows_file(run)
    assert list(rows.columns) == ["line", "label", "source", "sentence"]
    assert rows["line"].tolist() == expected
    assert int(dropped.line) not in rows["line"].tolist()
    by_line = rows.set_index("line")
    assert by_line.loc[int(flipped.line), "label"] == 1 - int(flipped.label)
    assert by_line.loc[int(flipped.line), "sentence"] == flipped.sentence
    assert by_line.loc[int(kept.line), "label"] == int(kept.label)
    original = dict(zip(train_split["line"], train_split["label"], strict=True))
    changed = [line for line in expected if by_line.loc[line, "label"] != original[line]]
    assert changed == [int(flipped.line)]  # no other label changed

    summary = json.loads((run / "train_rows.json").read_text())
    assert summary["trained"] == 96 and summary["split"] == len(train_split) == 216
    assert {k: summary["overrides"][k] for k in ("flipped", "dropped", "kept", "in_validation", "decisions")} == {
        "flipped": 1,
        "dropped": 1,
        "kept": 1,
        "in_validation": 1,
        "decisions": 4,
    }
    assert (run / "overrides.tsv").read_text(encoding="utf-8").count("\n") == 5  # the header and 4 decisions
    assert json.loads((run / "config.json").read_text())["overrides"] == str(overrides)
    events = read_metrics(run)
    assert next(e for e in events if e["kind"] == "start")["train_sentences"] == 96
    logged = [e["message"] for e in events if e["kind"] == "log"]
    assert any("1 flipped, 1 dropped, 1 kept (1 in validation, not applied)" in m for m in logged), logged

    # the run's own map is of the rows it trained on, with the labels it trained with
    from workbench.core.explore.cartography import training_map

    table = training_map(run).table
    assert table["line"].tolist() == expected
    assert table.set_index("line").loc[int(flipped.line), "label"] == 1 - int(flipped.label)


def test_a_bad_overrides_file_stops_before_a_run_folder_is_made(
    tiny_config: TrainConfig, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    row = load_cola(tiny_cola_dir)["train"].iloc[0]
    path = tmp_path / "overrides.tsv"
    path.write_text(HEADER + f"{int(row.line)}\t{row.sentence} (edited)\t{int(row.label)}\tflip\t\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"overrides.tsv:2: sentence: .* is not the sentence on line {int(row.line)}"):
        train(dataclasses.replace(tiny_config, overrides=str(path)), tmp_path / "runs" / "bad")
    assert not (tmp_path / "runs" / "bad" / "config.json").exists()


def test_a_resume_trains_on_the_rows_it_started_with_though_the_file_changed(
    small_config: TrainConfig, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    split = load_cola(tiny_cola_dir)["train"]
    path = decide(tmp_path / "overrides.tsv", (split.iloc[0], "drop", ""))
    config = dataclasses.replace(small_config, overrides=str(path))
    run = tmp_path / "runs" / "r"
    stop = threading.Event()
    stopped = train(config, run, stop=stop, on_event=lambda e: stop.set() if e["kind"] == "epoch" else None)
    assert stopped.status == "stopped"
    before = (run / "train_rows.tsv").read_bytes()
    decide(path, (split.iloc[1], "drop", ""), (split.iloc[2], "flip", ""))  # changed after the start
    done = train(config, run, resume=True)
    assert done.status == "done"
    assert (run / "train_rows.tsv").read_bytes() == before
    assert int(split.iloc[0].line) not in rows_file(run)["line"].tolist()
    assert int(split.iloc[1].line) in rows_file(run)["line"].tolist()


def by_hand(table: pd.DataFrame, region: str, fraction: float) -> list[int]:
    """The lines a map region keeps at FRACTION: ambiguous by variability (highest first), easy by confidence
    (highest first), hard by confidence (lowest first); ties by line; the share rounded up."""
    members = table[table["region"] == region]
    column, ascending = {"ambiguous": ("variability", False), "easy": ("confidence", False)}.get(
        region, ("confidence", True)
    )
    ordered = members.sort_values([column, "line"], ascending=[ascending, True])
    return ordered["line"].head(math.ceil(fraction * len(members))).tolist()


def test_map_regions_choose_the_sentences_and_the_new_run_has_its_own_map(
    done_run: TrainedRun, tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.core.data.cola as cola
    from workbench.core.explore.cartography import training_map
    from workbench.core.explore.diff import diff_runs

    runs = tmp_path / "runs"
    mapped = copy_run(done_run.path, runs, "mapped")
    table = training_map(mapped).table
    counts = table["region"].value_counts().to_dict()
    assert counts.get("ambiguous", 0) > 1 and counts.get("easy", 0) > 1  # the shared run's map has both
    wanted = set(by_hand(table, "ambiguous", 0.5)) | set(by_hand(table, "easy", 0.5))

    reads: list[object] = []
    real = cola.load_cola
    monkeypatch.setattr(cola, "load_cola", lambda *a, **k: reads.append(a) or real(*a, **k))
    config = dataclasses.replace(tiny_config, subset_map="mapped", subset_regions="ambiguous,easy", subset_fraction=0.5)
    result = train(config, runs / "subset")
    assert result.status == "done" and len(reads) == 1  # the data read once, the map's rows from its folder
    run = runs / "subset"

    split_order = [int(line) for line in load_cola(config.data)["train"]["line"]]
    expected = [line for line in split_order if line in wanted]  # in the split's order
    assert rows_file(run)["line"].tolist() == expected
    summary = json.loads((run / "train_rows.json").read_text())
    assert summary["map"]["selected"] == {
        "ambiguous": math.ceil(counts["ambiguous"] / 2),
        "easy": math.ceil(counts["easy"] / 2),
    }
    assert summary["trained"] == len(expected) and summary["map"]["run"] == str(mapped.resolve())

    own = training_map(run)  # the subset run's map: its rows, fewer than the split
    assert own.table["line"].tolist() == expected
    assert own.epochs == 2 and (own.table["epochs"] == 2).all()
    compared = diff_runs(mapped, run)  # both scored the same holdout
    assert compared.n == 40


def test_a_map_of_another_split_that_recorded_no_rows_is_refused(
    done_run: TrainedRun, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    mapped = copy_run(done_run.path, runs, "mapped")
    (mapped / "train_rows.tsv").unlink()  # as a run trained before the rows were recorded
    config = dataclasses.replace(tiny_config, subset_map="mapped", subset_regions="hard", split_seed=7)
    with pytest.raises(TrainingError, match=r"--map .*mapped: its map is of another split .*split seed 2018"):
        train(config, runs / "subset")
    with pytest.raises(TrainingError, match=r"--map: no run 'nothing' in"):
        train(dataclasses.replace(config, subset_map="nothing", split_seed=2018), runs / "subset")


@pytest.mark.parametrize(
    ("settings", "field", "fragment"),
    [
        ({"subset_regions": "ambiguous,middle", "subset_map": "x"}, "subset_regions", "unknown region 'middle'"),
        ({"subset_map": "x"}, "subset_regions", "name the map regions to train on"),
        ({"subset_regions": "easy"}, "subset_map", "name the run whose training map"),
        ({"subset_fraction": 0.5}, "subset_map", "name the run whose training map"),
        ({"subset_map": "x", "subset_regions": "easy", "subset_fraction": 0.0}, "subset_fraction", "must be > 0"),
        ({"subset_map": "x", "subset_regions": "easy", "subset_fraction": 1.5}, "subset_fraction", "<= 1"),
        ({"overrides": "  "}, "overrides", "must name a file"),
    ],
)
def test_the_subset_settings_are_checked(settings: dict[str, Any], field: str, fragment: str) -> None:
    problems = TrainConfig(**settings).validate()
    assert list(problems) == [field] and fragment in problems[field]
    assert TrainConfig(subset_map="x", subset_regions=" Easy, hard ,easy").region_names == ("easy", "hard")
