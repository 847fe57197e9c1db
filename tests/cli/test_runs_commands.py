"""`workbench compare` and `workbench export` on the session's CLI-trained runs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from helpers.runs import copy_run

from workbench.cli import main


def test_compare_and_export(cli_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs a and b: 2 epochs of 4 steps (64 sentences, batch 16), b with --seed 7."""
    runs = tmp_path / "runs"
    copy_run(cli_runs / "whole", runs, "a")
    copy_run(cli_runs / "seed7", runs, "b")
    assert main(["compare", "a", "b", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert "seed" in rows and "learning_rate" not in rows  # only the differing settings
    assert "val MCC epoch 2" in out

    assert main(["export", "a", "--runs", str(runs)]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sum(r["kind"] == "step" for r in table) == 2 * 4
    assert sum(r["kind"] == "epoch" for r in table) == 2
    assert all(r["loss"] for r in table if r["kind"] == "step")
