"""The `workbench` command in-process on a tiny model and the tiny CoLA: train, eval, predict, runs, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers.cli import exit_status

from workbench.cli import main


def tiny_train_args(model: Path, data: Path, runs: Path, name: str, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        str(model),
        "--data",
        str(data),
        "--runs",
        str(runs),
        "--name",
        name,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--train-limit",
        "64",
        "--precision",
        "fp32",
        "--learning-rate",
        "1e-3",
        *extra,
    ]


def test_train_eval_predict_runs(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    dev = len((tiny_cola_dir / "in_domain_dev.tsv").read_text().splitlines())
    assert main(tiny_train_args(tiny_model_dir, tiny_cola_dir, runs, "tiny")) == 0
    out, err = capsys.readouterr()
    assert "holdout (out_of_domain_dev) MCC" in out
    assert "epoch 1: train loss" in err  # plain progress lines when not on a terminal

    assert main(["eval", "tiny", "--runs", str(runs), "--split", "in_domain_dev"]) == 0
    out, _ = capsys.readouterr()
    assert f"in_domain_dev: {dev} sentences" in out and "MCC" in out and "per source" in out
    report = json.loads((runs / "tiny" / "eval.json").read_text())
    assert {"holdout", "in_domain_dev"} <= set(report)

    assert main(["predict", "tiny", "--runs", str(runs), "--json", "The cat sat on the mat.", "Cat the mat."]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        result = json.loads(line)
        assert result["label"] in ("acceptable", "unacceptable")
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    assert main(["runs", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "done" in out


def test_predict_reads_stdin_and_reports_empty_lines(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("One sentence here.\nAnother one.\n"))
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["predict", str(tiny_model_dir), "--runs", str(tmp_path), "\x00\x01  "]) == 2
    assert "empty sentence" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--epochs", "0"], "--epochs: must be between 1 and 1000"),
        (["train", "--name", "../escape"], "run name '../escape'"),
        (["train", "--resume", "nothing-here"], "no run 'nothing-here'"),
        (["eval", "missing-run"], "no run 'missing-run'"),
        (["model", "show", "--model", "/nonexistent/model"], "not a model folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_status([*args, "--runs", str(tmp_path)] if args[0] != "model" else args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_data_file_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("src\t1\t\tfine\nsrc\tyes\t\tnot a label\n")
    assert main(["data", "show", "--data", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {bad}:2: label: 'yes' is not 0 or 1"


def test_eval_scores_a_run_on_the_split_it_was_trained_with(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run trained with a non-default split seed is scored on its own validation sentences."""
    import pandas as pd

    from workbench.core.data.cola import load_cola

    runs = tmp_path / "runs"
    assert main(tiny_train_args(tiny_model_dir, tiny_cola_dir, runs, "seed7", "--split-seed", "7")) == 0
    assert main(["eval", "seed7", "--runs", str(runs), "--split", "validation"]) == 0
    capsys.readouterr()
    scored = pd.read_csv(runs / "seed7" / "predictions-validation.tsv", sep="\t", keep_default_na=False)
    own = load_cola(tiny_cola_dir, 0.1, 7)["validation"]["sentence"].tolist()
    default = load_cola(tiny_cola_dir, 0.1, 2018)["validation"]["sentence"].tolist()
    assert sorted(scored["sentence"]) == sorted(own)
    assert sorted(own) != sorted(default)  # the test would pass by accident on the default split


@pytest.mark.parametrize("before", [True, False])
def test_runs_folder_counts_before_or_after_the_subcommand(
    tmp_path: Path, before: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli import build_parser

    runs = tmp_path / "elsewhere"
    runs.mkdir()
    argv = ["--runs", str(runs), "open", "r1"] if before else ["open", "r1", "--runs", str(runs)]
    assert build_parser().parse_args(argv).runs == str(runs)
    argv = ["--runs", str(runs), "runs"] if before else ["runs", "--runs", str(runs)]
    assert main(argv) == 0
    assert f"no runs in {runs}" in capsys.readouterr().out  # that folder, not ./runs
