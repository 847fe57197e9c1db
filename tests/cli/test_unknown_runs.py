"""A run name that the runs folder does not have is an error that names the runs it has (exit 2), in every
command that takes one: never an empty "new" run in the app, nor "no trained model yet"."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import one_error_line
from helpers.tui import failed_run

from workbench.cli import main

PAIRS = Path(__file__).resolve().parents[2] / "data" / "pairs" / "example.tsv"

COMMANDS = [
    ["open", "nosuch"],
    ["predict", "nosuch", "The cat sat."],
    ["eval", "nosuch"],
    ["eval", "--phenomena", "nosuch"],
    ["attach", "nosuch"],
    ["stop", "nosuch"],
    ["export", "nosuch"],
    ["compare", "first-run", "nosuch"],
    ["explain", "nosuch", "The cat sat."],
    ["neighbors", "nosuch", "The cat sat."],
    ["diff", "first-run", "nosuch"],
    ["diff", "--phenomena", "nosuch", "first-run"],
    ["pairs", "nosuch", str(PAIRS)],
    ["data", "map", "nosuch"],
    ["soup", "first-run", "nosuch", "--name", "soup"],
]


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runs folder with two runs (they never trained far: no command here gets as far as a model)."""
    import workbench.tui.app

    def no_app(app: object, **options: object) -> int:
        raise AssertionError("the app opened on an unknown run")

    monkeypatch.setattr(workbench.tui.app, "run_without_joining", no_app)  # (it would take over the terminal)
    folder = tmp_path / "runs"
    failed_run(folder, "first-run")
    failed_run(folder, "second-run", started="2024-03-01T00:00:00")
    return folder


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(a for a in args if "/" not in a))
def test_an_unknown_run_is_an_error_that_lists_the_runs(
    runs: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--runs", str(runs)]) == 2
    line = one_error_line(capsys)
    assert "no run 'nosuch'" in line and str(runs) in line
    assert "first-run" in line and "second-run" in line  # what the user can name instead


def test_a_near_miss_is_named_and_an_empty_folder_says_so(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "frist-run", "Hello.", "--runs", str(runs)]) == 2
    assert "did you mean first-run?" in one_error_line(capsys)
    assert main(["open", "anything", "--runs", str(tmp_path / "empty")]) == 2
    assert "has no runs yet" in one_error_line(capsys)


def test_of_many_runs_the_newest_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.core.runs.lookup import LISTED_RUNS

    runs = tmp_path / "runs"
    names = [f"20240101-1200{n:02d}" for n in range(LISTED_RUNS + 5)]
    for name in names:
        failed_run(runs, name)
    assert main(["export", "nosuch", "--runs", str(runs)]) == 2
    line = one_error_line(capsys)
    assert names[-1] in line and names[-LISTED_RUNS] in line and names[0] not in line
    assert "and 5 older (workbench runs lists them all)" in line


def test_a_run_folder_given_as_a_path_is_still_found(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(runs / "first-run"), "--runs", str(runs.parent)]) == 0
    assert capsys.readouterr().out.startswith("kind,")
