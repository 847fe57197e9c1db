"""`workbench explain`, `diff` and `neighbors` on the session's CLI-trained runs, and their bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import exit_status
from helpers.runs import copy_run

from workbench.cli import main
from workbench.core.evaluation.recorded import read_predictions
from workbench.core.explore.diff import diff_predictions
from workbench.core.model.loading import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def runs(cli_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs a and b (seeds 42 and 7) on the tiny CoLA, and other_data trained and evaluated on 40 sentences
    of its own: copies of the session's cli_runs (the tests add neighbour caches and evaluations)."""
    folder = tmp_path_factory.mktemp("explore-runs")
    for name, source in (("a", "whole"), ("b", "seed7"), ("other_data", "other_data")):
        copy_run(cli_runs / source, folder, name)
    return folder


def test_cli_explain_json(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["explain", "a", "The cat sat on the mat.", "Cat the mat on sat.", "--runs", str(runs), "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, sentence in zip(lines, ["The cat sat on the mat.", "Cat the mat on sat."], strict=True):
        result = json.loads(line)
        assert result["sentence"] == sentence and result["method"] == "layer_integrated_gradients"
        assert len(result["tokens"]) == len(result["attributions"]) and result["tokens"][0] == "[CLS]"
        assert set(result["probabilities"]) == {"acceptable", "unacceptable"}
        assert result["label"] in result["probabilities"] and isinstance(result["delta"], float)


def test_cli_explain_text_shows_direction_by_sign_within_80_columns(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    long_word = "antidisestablishmentarianism" * 3
    assert main(["explain", "a", f"The {long_word} cat sat on the mat quietly.", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in out)
    head = next(i for i, line in enumerate(out) if "p(acceptable)" in line)
    assert "".join(out[:head]).replace(" ", "") == f"The{long_word}catsatonthematquietly."  # wrapped, whole
    token_lines = out[head + 3 :]
    assert any(line.split()[1] == "cat" for line in token_lines)
    for line in token_lines:
        value, *rest = line.split()
        assert value[0] in "+-" and float(value) == float(value)  # a signed number first
        bar = rest[1] if len(rest) > 1 else ""
        assert set(bar) <= {value[0]}  # the bar's marks repeat the sign
    assert sum(1 for line in token_lines if "+" * 5 in line or "-" * 5 in line) >= 1
    assert not any("[CLS]" in line or "[SEP]" in line for line in token_lines)


def test_cli_explain_versus(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert (
        main(["explain", "a", "John seems that is happy.", "--versus", "John seems to be happy.", "--runs", str(runs)])
        == 0
    )
    out = capsys.readouterr().out
    assert "John seems [that] [is] happy." in out and "John seems [to] [be] happy." in out
    assert "change in p(acceptable), B - A:" in out
    assert (
        main(
            [
                "explain",
                "a",
                "John seems that is happy.",
                "--versus",
                "John seems to be happy.",
                "--runs",
                str(runs),
                "--json",
            ]
        )
        == 0
    )
    pair = json.loads(capsys.readouterr().out)
    assert pair["delta_acceptable"] == pytest.approx(
        pair["probabilities_b"]["acceptable"] - pair["probabilities_a"]["acceptable"]
    )


def test_cli_diff_json_counts(runs: Path, tiny_cola_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holdout = len((tiny_cola_dir / "out_of_domain_dev.tsv").read_text().splitlines())
    capsys.readouterr()
    assert main(["diff", "a", "b", "--runs", str(runs), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == holdout and result["split"] == "holdout"
    counts = [result[k] for k in ("both_right", "only_a", "only_b", "both_wrong")]
    assert sum(counts) == holdout
    assert len(result["disagreements"]) == result["only_a"] + result["only_b"]
    expected = diff_predictions(
        read_predictions(runs / "a" / "predictions.tsv"), read_predictions(runs / "b" / "predictions.tsv")
    )
    assert counts == [expected.both_right, expected.only_a, expected.only_b, expected.both_wrong]
    assert all(d["source"] for d in result["disagreements"])  # the predictions file names the source
    assert main(["diff", "a", "a", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "they agree on every sentence" in out and "both right" in out


def test_cli_neighbors(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["neighbors", "a", "The cat sat on the mat.", "--k", "3", "--runs", str(runs), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["representation"] == "mean_last_hidden" and len(result["neighbors"]) == 3
    assert (runs / "a" / "neighbors-train.npz").is_file()
    assert main(["neighbors", "a", "The cat sat on the mat.", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("nearest training sentences") and len(out) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "a", ""], "empty sentence"),
        (["explain", "a", "\x00\x07\x1b"], "empty sentence"),
        (["explain", "a", "😺🎉"], "no word the model knows"),
        (["explain", "missing"], "no sentence"),
        (["explain", "missing", "A sentence."], "no run 'missing'"),
        (["explain", "a", "One.", "Two.", "--versus", "Three."], "exactly one sentence"),
        (["explain", "a", "One.", "--steps", "1"], "--steps"),
        (["neighbors", "a", "\x00"], "empty sentence"),
        (["neighbors", "missing", "A sentence."], "no run 'missing'"),
        (["diff", "a", "other_data"], "different sentences"),
        (["diff", "a", "b", "--split", "in_domain_train"], "no predictions recorded for in_domain_train"),
        (["diff", "a", "missing"], "no run 'missing'"),
        (["diff", "a", "../escape"], "no run '../escape'"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    runs: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert exit_status([*args, "--runs", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_explain_long_input_is_truncated_not_refused(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    long = ("The dog barked. " * 700)[:10_000]
    assert main(["explain", "a", long, "--runs", str(runs), "--steps", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["truncated"] is True and len(result["tokens"]) == 128
    assert main(["explain", "a", long, "--runs", str(runs), "--steps", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(truncated to 128 tokens)" in out[3] and all(len(line) <= 80 for line in out)
    assert out[2].endswith(" ...")  # the sentence is shown in at most 3 lines


def test_print_slices(runs: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli.runs import print_slices

    capsys.readouterr()
    print_slices(read_predictions(runs / "a" / "predictions.tsv"), tokenizer)
    out = capsys.readouterr().out
    assert "by length (tokens)" in out and "<=8" in out and "25+" in out
    assert "ECE" in out and "best" in out and "in use 0.50" in out
    assert all(len(line) <= 80 for line in out.splitlines())
