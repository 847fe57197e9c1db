"""`workbench diff A B --map`: two runs' maps of the training data side by side. Two copies of the demo run
(320 sentences of the bundled CoLA) with hand-made p(gold), whose regions and moves are known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.tui import DEMO_RUN, demo_run

from workbench.cli import main

ROWS = 320


@pytest.fixture
def runs(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """Run a: every sentence at p(gold) 0.9 in all 3 epochs (easy). Run b: rows 0-9 at 0.1 (hard), rows 10-19
    never recorded, row 20 at 0.1, 0.9, 0.1 (the only one that varied: ambiguous), the rest at 0.9 (easy)."""
    import shutil

    from workbench.core.runs.dynamics import TrainingDynamics
    from workbench.core.runs.lookup import load_run_data

    folder = tmp_path / "runs"
    demo_run(folder, tiny_model_dir)
    shutil.copytree(folder / DEMO_RUN, folder / "b")
    (folder / DEMO_RUN).rename(folder / "a")
    labels = load_run_data(folder / "a")["train"]["label"].to_numpy()[:ROWS].astype(np.int8)
    p_a = np.full((3, ROWS), 0.9, dtype=np.float32)
    p_b = p_a.copy()
    p_b[:, :10] = 0.1
    p_b[:, 10:20] = np.nan
    p_b[:, 20] = (0.1, 0.9, 0.1)
    TrainingDynamics(p_a, labels).save(folder / "a")
    TrainingDynamics(p_b, labels).save(folder / "b")
    return folder


def test_the_moves_between_regions_are_counted_as_by_hand(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "a", "b", "--map", "--runs", str(runs), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["shared"], found["only_a"], found["only_b"], found["relabelled"]) == (310, 10, 0, 0)
    assert found["moves"]["easy"] == {"easy": 299, "ambiguous": 1, "hard": 10}
    assert found["moves"]["hard"] == {"easy": 0, "ambiguous": 0, "hard": 0}
    assert found["mean_confidence_a"] == pytest.approx(0.9)
    assert found["mean_confidence_b"] == pytest.approx((10 * 0.1 + (0.1 + 0.9 + 0.1) / 3 + 299 * 0.9) / 310)
    moved = found["moved"]
    assert [m["change"] for m in moved[:10]] == pytest.approx([-0.8] * 10)  # rows 0-9 first
    assert {m["region_b"] for m in moved[:10]} == {"hard"}
    assert moved[10]["region_b"] == "ambiguous"  # row 20: 0.9 -> 0.367

    assert main(["diff", "a", "b", "--map", "--runs", str(runs), "--limit", "3"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in shown), [line for line in shown if len(line) > 80]
    text = "\n".join(shown)
    assert "310 sentences in both; 10 in a's only, 0 in b's only" in text
    easy_row = next(line for line in shown if line.strip().startswith("easy"))
    assert easy_row.split()[1:] == ["299", "1", "10", "310"]
    assert sum(1 for line in shown if "easy → hard" in line) == 3  # --limit 3 of the largest changes


def test_a_run_without_a_map_and_both_options_are_one_line_errors(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (runs / "b" / "training_dynamics.npz").unlink()
    assert main(["diff", "a", "b", "--map", "--runs", str(runs)]) != 0
    err = capsys.readouterr().err
    assert "training_dynamics.npz" in err or "map" in err, err
    assert main(["diff", "a", "b", "--map", "--phenomena", "--runs", str(runs)]) == 2
    assert "one at a time" in capsys.readouterr().err
