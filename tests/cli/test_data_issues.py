"""`workbench data issues` on the tiny BERT and the tiny CoLA: out-of-fold probabilities by 2 fold runs, the
job stopped and continued, cleanlab's ranking checked against cleanlab called directly, the map beside it,
and the errors said before anything trains."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.cli import one_error_line
from helpers.runs import TrainedRun, copy_run

from workbench.cli import main
from workbench.core.base.config import TrainConfig


def issues_args(model: Path, data: Path, runs: Path, *extra: str) -> list[str]:
    """`data issues` on the tiny model and data, one epoch a fold (the default's 3 would only cost time here)."""
    epochs = [] if "--epochs" in extra else ["--epochs", "1"]
    return ["data", "issues", "--model", str(model), "--data", str(data), "--runs", str(runs), *epochs, *extra]


def test_every_sentence_gets_one_probability_from_a_fold_that_never_trained_on_it(
    tiny_model_dir: Path, tiny_cola_dir: Path, done_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cleanlab.filter import find_label_issues

    from workbench.core.data.cola import load_cola
    from workbench.core.data.overrides import read_overrides
    from workbench.core.explore.cartography import training_map
    from workbench.core.explore.label_issues import read_label_issues, read_out_of_fold
    from workbench.core.runs.metrics import read_metrics
    from workbench.core.runs.train_rows import read_train_rows
    from workbench.core.search.out_of_fold import out_of_fold_probabilities

    runs = tmp_path / "runs"
    runs.mkdir()
    copy_run(done_run.path, runs, "mapped")  # a finished run with a map; the fold runs are newer ones

    # the job, stopped in fold 2's training once fold 1 is done
    config = TrainConfig(model=str(tiny_model_dir), data=str(tiny_cola_dir), epochs=1, seed=42)
    stop = threading.Event()
    seen: list[dict[str, Any]] = []

    def stop_in_fold_2(event: Any) -> None:
        seen.append(event)
        if event["kind"] == "step" and any(e["kind"] == "fold" and e["fold"] == 2 for e in seen):
            stop.set()

    job = out_of_fold_probabilities(config, 2, runs, "issues", on_event=stop_in_fold_2, stop=stop)
    assert (job.status, job.stopped_fold) == ("stopped", 2)
    assert [(e["fold"], e["state"]) for e in seen if e["kind"] == "fold"] == [
        (1, "start"),
        (1, "predict"),
        (1, "done"),
        (2, "start"),
    ]
    fold_1_events = (runs / "issues-f1" / "metrics.jsonl").read_bytes()

    # the same command again: fold 1 kept as it was, fold 2 resumed from its checkpoint
    assert main(issues_args(tiny_model_dir, tiny_cola_dir, runs, "--name", "issues", "--folds", "2", "--json")) == 0
    out = capsys.readouterr()
    assert "fold 1/2 (run issues-f1): done before, kept" in out.err
    assert "fold 2/2 (run issues-f2): resuming" in out.err
    assert (runs / "issues-f1" / "metrics.jsonl").read_bytes() == fold_1_events  # not retrained
    assert sum(e["kind"] == "start" for e in read_metrics(runs / "issues-f2")) == 2  # started, resumed
    document = json.loads(out.out)

    # every training sentence once, with one probability
    train = load_cola(tiny_cola_dir)["train"]
    table = read_out_of_fold(runs / "issues" / "out_of_fold.tsv")
    assert table["line"].tolist() == train["line"].tolist()
    assert table["label"].tolist() == train["label"].tolist()
    assert not table["p_acceptable"].isna().any()
    assert sorted(set(table["fold"])) == [1, 2]
    for fold in (1, 2):
        held = set(table.loc[table["fold"] == fold, "line"])
        dropped = read_overrides(runs / "issues" / f"fold-{fold}-overrides.tsv")
        assert {o.line for o in dropped} == held and {o.decision for o in dropped} == {"drop"}
        trained = read_train_rows(runs / f"issues-f{fold}")
        assert trained is not None
        assert set(trained["line"]) == set(train["line"]) - held  # the fold's model never saw its fold
    assert document["sentences"] == len(train) and document["folds"] == 2

    # the ranking is cleanlab's on the same arrays
    labels, p = table["label"].to_numpy(), table["p_acceptable"].to_numpy()
    ranked = find_label_issues(labels, np.column_stack([1 - p, p]), return_indices_ranked_by="self_confidence")
    assert [issue["line"] for issue in document["issues"][:20]] == table["line"].to_numpy()[ranked][:20].tolist()
    assert document["issues_found"] == len(ranked)
    assert [issue.line for issue in read_label_issues(runs)] == table["line"].to_numpy()[ranked].tolist()

    # the map beside it: the finished run's, not a fold run's; agreement counted from the map itself
    agreement = document["agreement"]
    assert agreement["map_run"] == "mapped"
    mapped = training_map(runs / "mapped").table
    region_of = dict(zip(mapped["line"], mapped["region"], strict=True))
    issue_lines = table["line"].to_numpy()[ranked].tolist()
    assert agreement["issues_in_hard"] == sum(region_of.get(line) == "hard" for line in issue_lines)
    assert agreement["hard"] == sum(region == "hard" for region in region_of.values())
    assert agreement["mapped"] == len(mapped)

    # `workbench runs` lists the group; the table fits 80 columns; other settings for the same group are refused
    assert main(["runs", "--runs", str(runs)]) == 0
    assert "group issues: 2/2 folds of `data issues` done" in capsys.readouterr().out
    assert main(issues_args(tiny_model_dir, tiny_cola_dir, runs, "--name", "issues", "--folds", "2")) == 0
    table_text = capsys.readouterr().out
    assert "cleanlab's issues in the map's hard region" in table_text
    assert max(len(line) for line in table_text.splitlines()) <= 80
    assert main(issues_args(tiny_model_dir, tiny_cola_dir, runs, "--name", "issues", "--folds", "3")) == 2
    assert "made with --folds 2, not 3" in one_error_line(capsys)


def test_without_a_finished_run_with_a_map_it_says_so_before_training(
    tiny_model_dir: Path, tiny_cola_dir: Path, done_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    assert main(issues_args(tiny_model_dir, tiny_cola_dir, runs, "--folds", "2")) == 2
    assert "no finished run with a map of its training data" in one_error_line(capsys)
    unmapped = copy_run(done_run.path, runs, "unmapped")
    (unmapped / "training_dynamics.npz").unlink()
    assert main(issues_args(tiny_model_dir, tiny_cola_dir, runs, "--folds", "2")) == 2
    assert "no finished run with a map" in one_error_line(capsys)
    assert main(issues_args(tiny_model_dir, tiny_cola_dir, runs, "--folds", "2", "--run", "unmapped")) == 2
    assert "no training map recorded" in one_error_line(capsys)
    assert main(issues_args(tiny_model_dir, tiny_cola_dir, runs, "--run", "unmapped", "--no-map")) == 2
    assert "--run and --no-map" in one_error_line(capsys)
    assert sorted(p.name for p in runs.iterdir()) == ["unmapped"]  # nothing trained, no group made


def test_a_bad_number_of_folds_is_refused_before_training(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    data = tmp_path / "few.csv"
    rows = [f"good sentence {i}.,1" for i in range(27)] + [f"bad sentence {i},0" for i in range(3)]
    data.write_text("sentence,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(issues_args(tiny_model_dir, data, runs, "--folds", "1", "--no-map"))
    assert exit_info.value.code == 2
    assert "--folds: must be between 2 and 20, not 1" in capsys.readouterr().err
    assert main(issues_args(tiny_model_dir, data, runs, "--folds", "5", "--no-map")) == 2
    assert "unacceptable sentences, so at most" in one_error_line(capsys)
    assert not runs.exists() or not any(runs.iterdir())
