"""Write an SVG of each pane of the workbench into screenshots/, after a real short training.

    python scripts/screenshots.py [--train-limit 128] [--epochs 2] [--size 80x24] [--out screenshots]
                                  [--also 60x20,nocolor]

Fine-tunes the embedded model on the first TRAIN_LIMIT CoLA sentences (about a minute
on a laptop CPU), driving the app by keys exactly as a user would, in a temporary
folder, and saves one SVG per pane (plus one during training and the help screen).
A second run, with another learning rate and seed, trains (its own process, as every training)
meanwhile, for the Runs pane following it live and the compare view of the two. Then
`workbench data issues --folds ISSUE_FOLDS --epochs 1` ranks the likely label errors (the fold runs
train in their own processes; about 2 minutes on 2 CPU cores) for the Data pane's issues view.

Then, for each of --also, the panes again on the first run: at another size (`60x20`:
`*-60x20.svg`) or with NO_COLOR set (`nocolor`: `*-nocolor.svg`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from workbench.cli.data import ISSUES_NAME
from workbench.tui.app import WorkbenchApp, make_app
from workbench.tui.panes.data import DataPane
from workbench.tui.panes.evaluate import EvaluatePane
from workbench.tui.panes.predict import PredictPane
from workbench.tui.panes.runs import RunsPane
from workbench.tui.panes.train import TrainPane
from workbench.tui.widgets.charts import SeriesChart

SENTENCES = [
    "The book was written by John.",
    "The book was written John by.",
    "Which book did you wonder whether to read?",
    "Mary seems to be happy.",
]


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            status = pilot.app.query_one("#status").render()
            data = pilot.app.query_one(DataPane)
            raise SystemExit(
                f"timed out waiting for {what} (status line: {status}; data {data.cola is None} "
                f"tok {data.tokenizer is None} split {data.split} lengths {list(data.lengths)} "
                f"active {pilot.app.active_pane} focused {pilot.app.focused})"
            )
        await pilot.pause(0.1)


SUFFIX = ""  # added to every file name: "-60x20", "-nocolor"


async def shoot(app: WorkbenchApp, pilot: Pilot[None], out: Path, name: str) -> None:
    for box in app.query(Input):
        box.cursor_blink = False
    app.clear_notifications()
    await pilot.pause(0.6)  # let the charts' timers redraw
    app.save_screenshot(filename=f"{name}{SUFFIX}.svg", path=str(out))
    print(f"wrote {out / (name + SUFFIX + '.svg')}")


async def train_and_shoot(app: WorkbenchApp, pilot: Pilot[None], out: Path, train_limit: int, epochs: int) -> None:
    await pilot.press("2")
    for name, value in {"train_limit": str(train_limit), "epochs": str(epochs), "batch_size": "16"}.items():
        app.query_one(f"#field-{name}", Input).value = value
    await pilot.press("s")
    train = app.query_one(TrainPane)
    loss = app.query_one("#chart-loss", SeriesChart)
    await wait_until(pilot, lambda: loss.points("loss") >= 6, 900, "the first loss points")
    await shoot(app, pilot, out, "2-train-running")
    await wait_until(pilot, lambda: not train.is_training, 1800, "the training to finish")
    await shoot(app, pilot, out, "2-train-done")
    await pilot.press("c")  # the form, prefilled with the run's configuration
    await shoot(app, pilot, out, "2-train-form")
    await pilot.press("c")


async def start_second_run(app: WorkbenchApp, pilot: Pilot[None]) -> str:
    """Train the same recipe with another learning rate and seed (s: its own process, which the Train pane follows)."""
    for name, value in {"learning_rate": "5e-5", "seed": "7"}.items():
        app.query_one(f"#field-{name}", Input).value = value
    before = {folder.name for folder in app.runs_dir.iterdir()} if app.runs_dir.is_dir() else set()
    await pilot.press("s")  # the opened run stays the one shown: the new run is found in the runs folder

    def started() -> list[str]:
        return sorted(
            folder.name
            for folder in app.runs_dir.iterdir()
            if folder.name not in before and (folder / "metrics.jsonl").is_file()
        )

    await wait_until(pilot, lambda: bool(started()), 300, "the background run to start")
    return started()[0]


def rank_label_issues(runs_dir: Path, run_id: str, folds: int) -> None:
    """`workbench data issues` into RUNS_DIR, beside RUN_ID's map: the likely label errors the Data pane's i shows."""
    argv = ["data", "issues", "--runs", str(runs_dir), "--folds", str(folds), "--epochs", "1", "--run", run_id]
    subprocess.run([sys.executable, "-m", "workbench.cli", *argv], check=True, stdout=subprocess.DEVNULL)


def only_run(runs_dir: Path) -> str:
    """The one run in RUNS_DIR (the screenshots' own, fresh folder)."""
    (run,) = [folder.name for folder in runs_dir.iterdir() if (folder / "metrics.jsonl").is_file()]
    return run


async def shoot_issues(app: WorkbenchApp, pilot: Pilot[None], out: Path) -> None:
    """The Data pane's likely label errors (i), the cursor on the third."""
    from workbench.tui.screens.label_issues import LabelIssuesScreen

    await pilot.press("i")
    await wait_until(pilot, lambda: getattr(app.screen, "issues", None) is not None, 60, "the label issues")
    assert isinstance(app.screen, LabelIssuesScreen)
    await pilot.press("down", "down")
    await shoot(app, pilot, out, "1-issues")
    await pilot.press("escape")


async def choose_run(app: WorkbenchApp, pilot: Pilot[None], run_id: str, key: str = "enter") -> None:
    """In the Runs pane, move to RUN_ID and press KEY (enter opens it, space marks it)."""
    await pilot.press("5")
    runs = app.query_one(RunsPane)
    await wait_until(pilot, lambda: run_id in [info.id for info in runs.runs], 60, f"run {run_id} listed")
    app.query_one("#runs-table", DataTable).move_cursor(row=[info.id for info in runs.runs].index(run_id))
    await pilot.press(key)


async def main(
    train_limit: int,
    epochs: int,
    size: tuple[int, int],
    out: Path,
    run: str | None,
    runs_dir: Path | None,
    issue_folds: int = 0,
) -> str:
    """Shoot every pane; the run shown (trained here unless RUN is given)."""
    out.mkdir(parents=True, exist_ok=True)
    if run is None:
        os.chdir(tempfile.mkdtemp(prefix="workbench-shots-"))  # relative paths on screen, nothing left in the repo
    app = make_app(runs_dir=runs_dir or Path("runs"), run=run, notify=False)
    async with app.run_test(size=size) as pilot:
        background, first = None, run
        if run is None:
            await train_and_shoot(app, pilot, out, train_limit, epochs)
            # the run just trained: the app does not open it by itself (the opened run stays the user's)
            first = app.current_run or only_run(app.runs_dir)
            background = await start_second_run(app, pilot)
            await choose_run(app, pilot, first)  # evaluate and try sentences on the first run
        await pilot.press("1")
        data = app.query_one(DataPane)
        await wait_until(pilot, lambda: "train" in data.lengths, 60, "token lengths")
        await pilot.press("down", "down", "down")
        await shoot(app, pilot, out, "1-data")
        await pilot.press("m")  # the opened run's map of its training data
        await wait_until(pilot, lambda: getattr(app.screen, "training_map", None) is not None, 60, "the map")
        await pilot.press("down", "down")
        await shoot(app, pilot, out, "1-map")
        await pilot.press("escape")
        if (app.runs_dir / ISSUES_NAME).is_dir():
            await shoot_issues(app, pilot, out)

        await pilot.press("3", "e")
        evaluate = app.query_one(EvaluatePane)
        await wait_until(pilot, lambda: evaluate.report is not None, 600, "the evaluation")
        await wait_until(pilot, lambda: not app.query_one("#eval-wrong", DataTable).loading, 60, "the table")
        await shoot(app, pilot, out, "3-evaluate")

        await pilot.press("4")
        predict = app.query_one(PredictPane)
        for sentence in SENTENCES:
            # Counted before the keys: with the model already loaded (by Evaluate) the answer can
            # arrive while the keys are still being pressed.
            count = len(predict.history) + 1
            await pilot.press("ctrl+u", *sentence, "enter")
            await wait_until(pilot, lambda: len(predict.history) >= count, 300, "a prediction")  # noqa: B023
        await shoot(app, pilot, out, "4-predict")

        await pilot.press("escape", "5")  # out of the sentence box first: there a 5 is text
        await wait_until(pilot, lambda: app.query_one("#runs-table", DataTable).row_count >= 1, 60, "the runs")
        runs = app.query_one(RunsPane)
        if background is not None:
            await choose_run(app, pilot, background)  # its charts follow it live
            await wait_until(
                pilot,
                lambda: app.query_one("#runs-chart-loss", SeriesChart).points("loss") >= 4,
                600,
                "the background run's loss points",
            )
        await shoot(app, pilot, out, "5-runs")

        def trained() -> list[Any]:  # the runs trained here, not `data issues`' fold runs (re-read: it refreshes)
            return [info for info in runs.runs if not info.id.startswith(ISSUES_NAME)]

        if len(trained()) >= 2:
            await wait_until(
                pilot,
                lambda: all(info.status != "running" for info in trained()[:2]),
                1800,
                "the background run to finish",
            )
            for info in trained()[:2]:
                await choose_run(app, pilot, info.id, key="space")
            await pilot.press("c")
            await shoot(app, pilot, out, "5-compare")
            await pilot.press("escape")
        if issue_folds and run is None:
            await asyncio.to_thread(rank_label_issues, app.runs_dir, str(first), issue_folds)
            await pilot.press("1")
            await shoot_issues(app, pilot, out)

        if run is not None:  # no training shots in this pass: the opened run's
            await pilot.press("2")
            await shoot(app, pilot, out, "2-train")
        await pilot.press("question_mark")
        await shoot(app, pilot, out, "help")
        return str(first)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-limit", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", default="80x24")
    parser.add_argument("--run", help="shoot an existing run instead of training one (skips the Train shots)")
    parser.add_argument("--runs-dir", type=Path)
    parser.add_argument(
        "--issue-folds", type=int, default=2, help="folds of `workbench data issues` for the issues view (0: none)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "screenshots")
    parser.add_argument(
        "--also", default="60x20,nocolor", help="more passes over the first run: a size (60x20) or nocolor; '' for none"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    first_pass = main(
        args.train_limit, args.epochs, (width, height), args.out.resolve(), args.run, args.runs_dir, args.issue_folds
    )
    shown = asyncio.run(first_pass)
    runs_dir = args.runs_dir if args.run else Path("runs")  # the temporary folder is still the current one
    for extra in filter(None, args.also.split(",")):
        if extra == "nocolor":
            os.environ["NO_COLOR"] = "1"  # read by Textual when the app is made
            SUFFIX, size = "-nocolor", (width, height)
        else:
            SUFFIX, size = f"-{extra}", tuple(int(v) for v in extra.lower().split("x"))  # type: ignore[assignment]
        asyncio.run(main(args.train_limit, args.epochs, size, args.out.resolve(), shown, runs_dir))
        os.environ.pop("NO_COLOR", None)
