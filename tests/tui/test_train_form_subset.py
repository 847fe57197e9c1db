"""The Train form's overrides and map settings: a good overrides file reaches the launched training's config and
its trained rows; a bad one shows its error (file and line) and starts nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import warm
from helpers.tui import wait_until
from textual.widgets import Input

from workbench.core.data.cola import load_cola
from workbench.core.runs.status import list_runs
from workbench.tui.app import make_app
from workbench.tui.panes.train import FORM_FIELDS, TrainPane
from workbench.tui.screens.run_detail import run_detail

SIZE = (80, 24)
HEADER = "line\tsentence\told_label\tdecision\tnote\n"


async def set_field(pilot, app, name: str, value: str) -> None:  # type: ignore[no-untyped-def]
    app.query_one(f"#field-{name}", Input).focus()
    await pilot.pause()  # focus() takes effect at the app's next turn; keys go to the focused widget
    await pilot.press("ctrl+u", *value)


def test_the_form_has_the_overrides_and_map_settings() -> None:
    assert {"overrides", "subset_map", "subset_regions", "subset_fraction"} <= set(FORM_FIELDS)


async def test_the_form_trains_with_its_overrides_file(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    row = load_cola(tiny_cola_dir)["train"].iloc[0]
    overrides = tmp_path / "mine.tsv"
    overrides.write_text(HEADER + f"{int(row.line)}\t{row.sentence}\t{int(row.label)}\tflip\t\n", encoding="utf-8")
    runs = tmp_path / "runs"
    launched: list[Any] = []
    launch = warm.launcher()

    def recording(config: Any, run_dir: Path, **options: Any) -> int:
        launched.append(config)
        return launch(config, run_dir, **options)

    app = make_app(model=str(tiny_model_dir), data=str(tiny_cola_dir), runs_dir=runs, launcher=recording)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        for name, value in [
            ("epochs", "1"),
            ("precision", "fp32"),
            ("batch_size", "16"),
            ("train_limit", "32"),
            ("overrides", str(overrides)),
        ]:
            await set_field(pilot, app, name, value)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: [r.status for r in list_runs(runs)] == ["done"], timeout=120, what="the training to end"
        )
    assert [config.overrides for config in launched] == [str(overrides)]
    (run,) = list_runs(runs)
    assert json.loads((run.path / "config.json").read_text())["overrides"] == str(overrides)
    summary = json.loads((run.path / "train_rows.json").read_text())
    assert summary["overrides"]["flipped"] == 1 and summary["trained"] == 32
    first = (run.path / "train_rows.tsv").read_text(encoding="utf-8").splitlines()[1].split("\t")
    assert first[:2] == [str(int(row.line)), str(1 - int(row.label))]  # the split's first row, flipped
    assert run.trained_on.startswith("trained on 32 of 216 sentences: overrides mine.tsv: 1 flipped")
    assert f"data     {run.trained_on}" in run_detail(run).plain  # the run's details (Runs pane, i)


async def test_a_bad_overrides_file_shows_its_line_and_starts_nothing(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    row = load_cola(tiny_cola_dir)["train"].iloc[0]
    overrides = tmp_path / "mine.tsv"
    overrides.write_text(
        HEADER + f"{int(row.line)}\t{row.sentence}\t{int(row.label)}\tflip\t\n9999\tNot there.\t1\tdrop\t\n",
        encoding="utf-8",
    )
    runs = tmp_path / "runs"
    launched: list[Any] = []

    def refuse(config: Any, run_dir: Path, **options: Any) -> int:
        launched.append(config)
        raise AssertionError("no training may start")

    app = make_app(model=str(tiny_model_dir), data=str(tiny_cola_dir), runs_dir=runs, launcher=refuse)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        pane = app.query_one(TrainPane)
        await set_field(pilot, app, "overrides", str(overrides))
        await pilot.press("enter")
        await wait_until(pilot, lambda: pane.state == "idle" and pane.live_run is None, what="the start refused")
        headline = str(pane.headline)
        assert f"{overrides}:3: line: in_domain_train.tsv has no line 9999" in headline, headline
        assert "did not start" in headline
    assert launched == []
    assert not runs.exists() or list(runs.iterdir()) == []  # no run; the claimed run id given back
