"""Reviewing labels from the keyboard in the map of the training data: f flip, d drop, k keep, n note, u undo
write the label-overrides file at once; the Data pane's and the map's tables show the decisions (in text, so
without colour too); t takes the file to the Train form; a bad or unwritable file is told, never overwritten.
The real app, driven by keys, on the tiny BERT; the file and the data are read back with csv and plain text."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, cast

import pytest
from helpers.runs import TrainedRun, copy_run
from helpers.tui import DEMO_RUN, demo_run, wait_until
from textual.pilot import Pilot
from textual.widgets import Input, Static

from workbench.core.base.config import project_data_dir
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.screens.training_map import MapTable, TrainingMapScreen

SIZE = (80, 24)
TRAIN_FILE = project_data_dir() / "in_domain_train.tsv"
HEADER = "line\tsentence\told_label\tdecision\tnote\n"


@pytest.fixture
def runs(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The demo run (320 sentences of the bundled CoLA) with a 3-epoch map of random p(gold)."""
    import numpy as np

    from workbench.core.runs.dynamics import TrainingDynamics
    from workbench.core.runs.lookup import load_run_data

    folder = tmp_path / "runs"
    demo_run(folder, tiny_model_dir)
    labels = load_run_data(folder / DEMO_RUN)["train"]["label"].to_numpy()[:320]
    p_gold = np.random.default_rng(0).random((3, 320)).astype(np.float32)
    TrainingDynamics(p_gold, labels.astype(np.int8)).save(folder / DEMO_RUN)
    return folder


def app_for(runs: Path, **options: object) -> WorkbenchApp:
    app = make_app(runs_dir=runs, run=DEMO_RUN, **options)  # type: ignore[arg-type]
    app.load_on_start = False
    return app


def data_line(number: int) -> tuple[int, str]:
    """Line NUMBER of the bundled training file, read as plain text: its label and sentence."""
    cells = TRAIN_FILE.read_text(encoding="utf-8").split("\n")[number - 1].split("\t")
    return int(cells[1]), cells[3].strip()


def on_disk(path: Path) -> dict[int, dict[str, str]]:
    """The overrides file read with csv alone, by line."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return {int(row["line"]): row for row in rows}


def shown_line(table: MapTable, y: int) -> str:
    """Row Y of TABLE as the screen shows it (0: the header)."""
    return "".join(segment.text for segment in table.render_line(y))


def text_of(widget: Static) -> str:
    return str(widget.render())


def notes(app: WorkbenchApp) -> list[str]:
    return [n.message for n in app._notifications]  # type: ignore[attr-defined]


async def open_screen(pilot: Pilot[None], app: WorkbenchApp, key: str, kind: type[Any]) -> Any:
    """KEY on the Data pane, and the screen of KIND it opens."""
    await pilot.press("1")
    await wait_until(pilot, lambda: app.active_pane == "data", what="the data pane")  # a loaded machine
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, kind), what=kind.__name__)
    return app.screen


async def open_map(pilot: Pilot[None], app: WorkbenchApp) -> TrainingMapScreen:
    screen = await open_screen(pilot, app, "m", TrainingMapScreen)
    await wait_until(pilot, lambda: screen.shown is not None, what="the map read", timeout=120)
    await pilot.pause()
    return cast(TrainingMapScreen, screen)


async def test_flip_drop_keep_note_and_undo_land_in_the_overrides_file(runs: Path) -> None:
    path = runs / "label-overrides.tsv"  # the default: in the runs folder
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_map(pilot, app)
        table = screen.query_one("#map-table", MapTable)
        review = screen.query_one("#review-line", Static)
        assert "no decisions yet" in text_of(review) and str(path) in text_of(review)
        rows = [table.get_row_at(i) for i in range(3)]
        lines = [row[-1] for row in rows]
        truth = [data_line(line) for line in lines]
        assert [row[5] for row in rows] == [sentence for _, sentence in truth]  # the rows are those lines

        await pilot.press("f")
        label, sentence = truth[0]
        assert on_disk(path) == {
            lines[0]: {
                "line": str(lines[0]),
                "sentence": sentence,
                "old_label": str(label),
                "decision": "flip",
                "note": "",
            }
        }
        assert f"{label}→{1 - label}" in shown_line(table, 1)

        await pilot.press("down", "d", "down", "k")
        decided = on_disk(path)
        assert [decided[line]["decision"] for line in lines] == ["flip", "drop", "keep"]
        assert [decided[line]["old_label"] for line in lines] == [str(label) for label, _ in truth]
        assert [decided[line]["sentence"] for line in lines] == [sentence for _, sentence in truth]
        assert f"{truth[1][0]} drop" in shown_line(table, 2) and f"{truth[2][0]} keep" in shown_line(table, 3)
        assert f"3 decisions → {path} · t: train with them · 1 flip, 1 drop, 1 keep" in text_of(review)

        await pilot.press("up", "up", "n")  # back on the flipped sentence: a note on its decision
        note = screen.query_one("#review-note", Input)
        assert note.display and app.focused is note
        await pilot.press(*"context lost", "enter")
        assert on_disk(path)[lines[0]]["note"] == "context lost"
        assert on_disk(path)[lines[0]]["decision"] == "flip"
        assert not note.display and app.focused is table
        detail = text_of(screen.query_one("#map-trajectory", Static))
        assert "flip" in detail and "context lost" in detail

        await pilot.press("down", "f")  # another decision keeps the note of the one it replaces: none here
        assert on_disk(path)[lines[1]]["decision"] == "flip"
        await pilot.press("n", *"xyz", "escape")  # escape leaves the note unkept, the map open
        assert isinstance(app.screen, TrainingMapScreen) and on_disk(path)[lines[1]]["note"] == ""

        await pilot.press("down", "u")  # undo: the file loses the line
        assert set(on_disk(path)) == {lines[0], lines[1]}
        assert "keep" not in shown_line(table, 3) and "→" not in shown_line(table, 3)
        assert "2 decisions" in text_of(review)
        await pilot.press("u")
        assert any("no decision to undo" in n for n in notes(app))

        await pilot.press("t")  # the decisions into the Train form
        await wait_until(pilot, lambda: app.active_pane == "train", what="the Train pane")
        await pilot.pause()
        assert not isinstance(app.screen, TrainingMapScreen)
        assert app.query_one("#field-overrides", Input).value == str(path)
        assert app.query_one("#train-form").display


async def test_a_note_needs_a_decision_first(runs: Path) -> None:
    path = runs / "label-overrides.tsv"
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_map(pilot, app)
        await pilot.press("n")
        assert not screen.query_one("#review-note", Input).display
        assert any("decide first" in n for n in notes(app))
        await pilot.press("t")  # nothing to train with yet: the map stays
        assert isinstance(app.screen, TrainingMapScreen) and not path.exists()


async def test_a_bad_overrides_file_is_told_with_its_line_and_never_overwritten(runs: Path) -> None:
    path = runs / "label-overrides.tsv"
    label, sentence = data_line(5)
    path.write_text(f"{HEADER}5\t{sentence}\t{label}\tkeep\t\n7\tsomething\t1\tflop\tmaybe\n", encoding="utf-8")
    before = path.read_bytes()
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_map(pilot, app)
        assert any(f"{path}:3" in n and "flop" in n for n in notes(app)), notes(app)
        review = text_of(screen.query_one("#review-line", Static))
        assert "✗" in review and f"{path}:3" in review
        told = len(notes(app))
        for key in ("f", "d", "k", "u", "n", "t"):
            await pilot.press(key)
        assert path.read_bytes() == before
        assert len(notes(app)) > told and isinstance(app.screen, TrainingMapScreen)
        assert not screen.query_one("#review-note", Input).display


async def test_an_unwritable_overrides_file_is_told_and_the_app_goes_on(runs: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be\n", encoding="utf-8")
    path = blocker / "label-overrides.tsv"
    app = app_for(runs, overrides=path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_map(pilot, app)
        assert str(path) in text_of(screen.query_one("#review-line", Static))  # the file given, shown
        await pilot.press("f")
        assert any(str(path) in n and "cannot be written" in n for n in notes(app)), notes(app)
        assert isinstance(app.screen, TrainingMapScreen) and not screen.overrides
        assert "→" not in shown_line(screen.query_one("#map-table", MapTable), 1)


@pytest.mark.parametrize("size", [(60, 20), SIZE])
@pytest.mark.parametrize("colour", [True, False])
async def test_the_data_pane_shows_the_decisions_in_words(
    runs: Path, tiny_model_dir: Path, size: tuple[int, int], colour: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision made in the map shows in the Data pane's training split, as text (NO_COLOR too), at 60x20."""
    from workbench.tui.panes.data import DataPane

    if not colour:
        monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(model=str(tiny_model_dir), runs_dir=runs, run=DEMO_RUN)  # the bundled CoLA, loaded
    async with app.run_test(size=size) as pilot:
        data = app.query_one(DataPane)
        await wait_until(pilot, lambda: data.cola is not None and data.tokenizer is not None, what="the data")
        screen = await open_map(pilot, app)
        table = screen.query_one("#map-table", MapTable)
        flipped, dropped = table.get_row_at(0)[-1], table.get_row_at(1)[-1]
        await pilot.press("f", "down", "d", "escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, TrainingMapScreen), what="the map closed")
        assert data.split == "train"
        for line, decision in ((flipped, "flip"), (dropped, "drop")):
            label, sentence = data_line(line)
            index = [row[0] for row in data.table.rows].index(line)
            data.table.move_cursor(index)
            await pilot.pause()
            y = index - int(data.table.scroll_offset.y) + 1
            shown = shown_line(data.table, y)
            expected = f"{label}→{1 - label}" if decision == "flip" else f"{label} drop"
            assert shown.lstrip().startswith(str(line)) and expected in shown, shown
            assert sentence[:10] in shown  # the sentence keeps its place at 60 columns
            detail = text_of(app.query_one("#data-tokens", Static))
            said = f"flip {expected} in" if decision == "flip" else "drop in"
            assert f"{said} {runs / 'label-overrides.tsv'}" in detail, detail
        await pilot.press("s")  # validation: decisions apply to the training split only
        assert not data.table.decisions


def test_the_overrides_file_is_an_option_of_the_app(tmp_path: Path) -> None:
    from workbench.cli import build_parser

    for argv in (
        ["--overrides", "x.tsv"],
        ["--overrides", "x.tsv", "open", "r"],
        ["open", "r", "--overrides", "x.tsv"],
    ):
        assert build_parser().parse_args(argv).app_overrides == "x.tsv", argv
    assert build_parser().parse_args([]).app_overrides is None
    assert make_app(runs_dir=tmp_path).session.overrides_file == tmp_path / "label-overrides.tsv"
    assert make_app(runs_dir=tmp_path, overrides=tmp_path / "o.tsv").session.overrides_file == tmp_path / "o.tsv"


async def test_a_decision_in_the_map_trains_the_next_run_from_the_form(
    done_run: TrainedRun, tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    """The issue's whole loop: flip a sentence in a trained run's map, t, and the training started from the
    Train form runs with the overrides file (its config names it) and trains that sentence with the other
    label (its recorded training rows, read with csv)."""
    from helpers import warm

    from workbench.core.runs.status import list_runs

    runs = tmp_path / "runs"
    mapped = copy_run(done_run.path, runs, "mapped")
    path = runs / "label-overrides.tsv"
    launched: list[Any] = []
    launch = warm.launcher()

    def recording(config: Any, run_dir: Path, **options: Any) -> int:
        launched.append(config)
        return launch(config, run_dir, **options)

    app = make_app(
        model=str(tiny_model_dir), data=str(tiny_cola_dir), runs_dir=runs, run=mapped.name, launcher=recording
    )
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_map(pilot, app)
        table = screen.query_one("#map-table", MapTable)
        line, sentence = table.get_row_at(0)[-1], table.get_row_at(0)[5]
        await pilot.press("f", "t")
        await wait_until(pilot, lambda: app.active_pane == "train", what="the Train pane")
        await pilot.pause()
        assert app.query_one("#field-overrides", Input).value == str(path)
        for name, value in [("epochs", "1"), ("precision", "fp32"), ("batch_size", "16"), ("train_limit", "96")]:
            field = app.query_one(f"#field-{name}", Input)
            field.focus()
            await pilot.pause()
            await pilot.press("ctrl+u", *value)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: [r.status for r in list_runs(runs) if r.id != mapped.name] == ["done"],
            timeout=180,
            what="the training to end",
        )
    assert [config.overrides for config in launched] == [str(path)]
    (run,) = [r for r in list_runs(runs) if r.id != mapped.name]
    assert json.loads((run.path / "config.json").read_text())["overrides"] == str(path)
    with (tiny_cola_dir / "in_domain_train.tsv").open(encoding="utf-8") as handle:
        label = int(handle.read().split("\n")[line - 1].split("\t")[1])
    with (run.path / "train_rows.tsv").open(encoding="utf-8", newline="") as handle:
        trained = {int(r["line"]): r for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)}
    assert trained[line]["sentence"] == sentence and trained[line]["label"] == str(1 - label)


# ---------------------------------------------------------------- the likely label errors (i in the Data pane)

ISSUE_HEADER = "rank\tline\tsentence\tlabel\tp_label\tquality\tfold\tregion\tmap_confidence\n"


def write_issues(runs: Path, lines: list[int]) -> Path:
    """A label_issues.tsv and its report as `data issues` leaves them in a fold group, written by hand: LINES of
    the bundled training file, most likely first."""
    group = runs / "issues-group"
    group.mkdir(parents=True)
    rows = []
    for rank, line in enumerate(lines, start=1):
        label, sentence = data_line(line)
        region = "hard" if rank == 1 else "ambiguous"
        rows.append(
            f"{rank}\t{line}\t{sentence}\t{label}\t{0.01 * rank:.4f}\t{0.01 * rank:.4f}\t{rank % 5}\t{region}\t"
        )
    (group / "label_issues.tsv").write_text(ISSUE_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    agreement = {"map_run": "mapped", "issues_mapped": 3, "issues_in_hard": 1, "expected_in_hard": 0.4}
    (group / "label_issues.json").write_text(json.dumps({"sentences": 320, "agreement": agreement}), encoding="utf-8")
    return group


async def test_the_likely_label_errors_are_reviewed_into_the_overrides_file(runs: Path) -> None:
    from workbench.tui.screens.label_issues import IssuesTable, LabelIssuesScreen

    path = runs / "label-overrides.tsv"
    lines = [17, 5, 230]
    write_issues(runs, lines)
    app = app_for(runs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, app, "i", LabelIssuesScreen)
        await wait_until(pilot, lambda: screen.issues is not None, what="the issues read")
        await pilot.pause()
        title = text_of(screen.query_one("#issues-title", Static))
        assert "issues-group" in title and "3 likely label errors" in title
        assert "1 of 3 in the hard region of mapped's map (by chance 0.4)" in title
        table = screen.query_one("#issues-table", IssuesTable)
        truth = [data_line(line) for line in lines]
        for y, (_label, sentence) in enumerate(truth, start=1):  # in the file's order, the sentence on screen
            shown = shown_line(table, y)
            assert shown.lstrip().startswith(str(y)) and sentence[:12] in shown, shown
        detail = text_of(screen.query_one("#issues-detail", Static))
        assert "#1" in detail and "p(" in detail and truth[0][1] in detail

        await pilot.press("f", "down", "d")
        decided = on_disk(path)
        assert set(decided) == {17, 5}
        assert decided[17]["decision"] == "flip" and decided[17]["old_label"] == str(truth[0][0])
        assert decided[17]["sentence"] == truth[0][1]
        assert decided[5]["decision"] == "drop" and decided[5]["old_label"] == str(truth[1][0])
        assert f"{truth[0][0]}→{1 - truth[0][0]}" in shown_line(table, 1)
        assert f"{truth[1][0]} drop" in shown_line(table, 2)
        await pilot.press("u")
        assert set(on_disk(path)) == {17}

        await pilot.press("t")
        await wait_until(pilot, lambda: app.active_pane == "train", what="the Train pane")
        await pilot.pause()
        assert app.query_one("#field-overrides", Input).value == str(path)


async def test_without_label_errors_the_screen_says_which_command_makes_them(runs: Path) -> None:
    from workbench.tui.screens.label_issues import LabelIssuesScreen

    app = app_for(runs)
    async with app.run_test(size=(60, 20)) as pilot:
        screen = await open_screen(pilot, app, "i", LabelIssuesScreen)
        title = screen.query_one("#issues-title", Static)
        await wait_until(pilot, lambda: "workbench data issues" in text_of(title), what="the reason")
        assert "no label_issues.tsv" in text_of(title)
        await pilot.press("f")  # nothing highlighted: nothing decided
        assert not (runs / "label-overrides.tsv").exists()
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, LabelIssuesScreen), what="closed")
