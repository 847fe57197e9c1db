"""`workbench train --overrides FILE` and `--map RUN --regions ... --fraction F`: a bad overrides file or subset
request is exit 2 and one line naming the file and line (before a run folder is made); a good one trains on the
chosen rows, and `workbench runs` says how they were chosen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import exit_status, one_error_line, train_args
from helpers.runs import copy_run

from workbench.cli import main
from workbench.core.data.cola import load_cola

HEADER = "line\tsentence\told_label\tdecision\tnote\n"


@pytest.fixture
def first(tiny_cola_dir: Path) -> tuple[int, str, int]:
    """The tiny CoLA's first training row: its line, sentence and label."""
    row = load_cola(tiny_cola_dir)["train"].iloc[0]
    return int(row.line), str(row.sentence), int(row.label)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "overrides.tsv: no such overrides file"),
        ("line\tsentence\n", "overrides.tsv:1: the first line must be the header"),
        (HEADER + "{line}\t{sentence}\t{label}\trelabel\t\n", "overrides.tsv:2: decision: 'relabel' is not one of"),
        (HEADER + "{line}\t{sentence}\t{label}\tflip\t\n{line}\t{sentence}\t{label}\tdrop\t\n", ":3: line {line} is"),
        (HEADER + "9999\tNo such line.\t1\tdrop\t\n", "overrides.tsv:2: line: in_domain_train.tsv has no line 9999"),
        (HEADER + "{line}\tAnother sentence.\t{label}\tflip\t\n", "overrides.tsv:2: sentence: 'Another sentence.' is"),
        (HEADER + "{line}\t{sentence}\t{other}\tflip\t\n", "overrides.tsv:2: old_label: {other} is not the label"),
        (HEADER + "{line}\t{sentence}\t2\tflip\t\n", "overrides.tsv:2: old_label: '2' is not 0 or 1"),
    ],
)
def test_a_bad_overrides_file_is_exit_2_and_one_line_and_makes_no_run(
    content: str | None,
    message: str,
    first: tuple[int, str, int],
    tiny_model_dir: Path,
    tiny_cola_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    line, sentence, label = first
    values = {"line": line, "sentence": sentence, "label": label, "other": 1 - label}
    path = tmp_path / "overrides.tsv"
    if content is not None:
        path.write_text(content.format(**values), encoding="utf-8")
    runs = tmp_path / "runs"
    argv = train_args(tiny_model_dir, tiny_cola_dir, runs, "bad", "--overrides", str(path))
    assert main(argv) == 2
    error = one_error_line(capsys)
    assert error.startswith(f"error: {path}") and message.format(**values) in error, error
    assert not (runs / "bad").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--map", "nothing", "--regions", "easy"], "error: no run 'nothing' in"),
        (["--regions", "easy"], "error: --map: name the run whose training map gives the regions"),
        (["--map", "whole", "--regions", "middle"], "error: --regions: unknown region 'middle'"),
        (["--map", "whole"], "error: --regions: name the map regions to train on"),
        (
            ["--map", "whole", "--regions", "easy", "--fraction", "0"],
            "error: argument --fraction: must be > 0 and <= 1",
        ),
    ],
)
def test_a_bad_subset_request_is_exit_2_and_one_line(
    extra: list[str],
    message: str,
    cli_runs: Path,
    tiny_model_dir: Path,
    tiny_cola_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tmp_path / "runs"
    copy_run(cli_runs / "whole", runs)
    assert exit_status(train_args(tiny_model_dir, tiny_cola_dir, runs, "subset", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (runs / "subset").exists()


def test_train_on_map_regions_and_overrides_and_runs_says_so(
    cli_runs: Path,
    first: tuple[int, str, int],
    tiny_model_dir: Path,
    tiny_cola_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tmp_path / "runs"
    copy_run(cli_runs / "whole", runs)
    line, sentence, label = first
    overrides = tmp_path / "overrides.tsv"
    overrides.write_text(HEADER + f"{line}\t{sentence}\t{label}\tflip\tby hand\n", encoding="utf-8")
    extra = ["--overrides", str(overrides), "--map", "whole", "--regions", "easy,hard,ambiguous"]
    assert main(train_args(tiny_model_dir, tiny_cola_dir, runs, "subset", *extra)) == 0
    capsys.readouterr()
    run = runs / "subset"
    config = json.loads((run / "config.json").read_text())
    assert config["subset_map"] == str(runs / "whole") and config["subset_regions"] == "easy,hard,ambiguous"
    summary = json.loads((run / "train_rows.json").read_text())
    # every region of whole's map: the 64 sentences it trained on (its --train-limit), then this run's first 64
    assert sum(summary["map"]["selected"].values()) == 64 == summary["trained"]
    assert summary["overrides"]["flipped"] == 1
    rows = (run / "train_rows.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[1] == f"{line}\t{1 - label}\t{load_cola(tiny_cola_dir)['train'].iloc[0].source}\t{sentence}"

    assert main(["runs", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    below = out[next(i for i, text in enumerate(out) if text.startswith("subset")) + 1].strip()
    assert below.startswith("trained on 64 of 216 sentences: overrides overrides.tsv: 1 flipped, 0 dropped, 0 kept")
    assert "map of whole: easy " in below and "first 64" in below
    assert not any(text.strip().startswith("trained on") for text in out if not text.startswith(" "))


@pytest.mark.parametrize("many", [["sweep", "--trials", "1", "--study", "m"], ["train", "--seeds", "7", "--name", "g"]])
def test_a_sweep_and_a_seed_group_find_the_map_in_their_runs_folder(
    many: list[str],
    cli_runs: Path,
    tiny_model_dir: Path,
    tiny_cola_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--map whole` names a run of --runs (the working folder's own runs/ has none)."""
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "elsewhere"
    copy_run(cli_runs / "whole", runs)
    flags = train_args(tiny_model_dir, tiny_cola_dir, runs, "x")[1:]
    flags = flags[: flags.index("--name")] + flags[flags.index("--name") + 2 :]
    assert main([*many, *flags, "--map", "whole", "--regions", "easy,hard,ambiguous"]) == 0, capsys.readouterr().err
    trained = [run for run in runs.iterdir() if (run / "train_rows.json").is_file() and run.name != "whole"]
    assert len(trained) == 1
    summary = json.loads((trained[0] / "train_rows.json").read_text())
    assert Path(summary["map"]["run"]).resolve() == (runs / "whole").resolve(), summary
