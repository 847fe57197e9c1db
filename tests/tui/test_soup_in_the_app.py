"""The groups view (Runs pane, `G`) makes a soup of a seed group (`s`) in a worker, and says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers.tui import DEMO_RUN, demo_run, wait_until

from workbench.core.base.config import TrainConfig
from workbench.core.search.groups import create_group
from workbench.tui.app import make_app
from workbench.tui.screens.many_runs import ManyRunsScreen

SIZE = (80, 24)


def _group(runs: Path, group: str, tiny_model_dir: Path) -> None:
    demo_run(runs, tiny_model_dir)
    create_group(runs, group, TrainConfig(), [1, 2])
    for seed in (1, 2):
        shutil.copytree(runs / DEMO_RUN, runs / f"{group}-s{seed}")


async def test_s_in_the_groups_view_makes_a_greedy_soup_of_the_group(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _group(runs, "g", tiny_model_dir)
    app = make_app(runs_dir=runs, run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "G")
        screen = app.screen
        assert isinstance(screen, ManyRunsScreen)
        await wait_until(pilot, lambda: screen.groups == ["g"], what="the groups view")
        assert "s: soup of g" in str(screen.query_one("#detail-box").border_subtitle)
        await pilot.press("s")
        await wait_until(
            pilot,
            lambda: any("soup g-soup made" in (n.title or "") for n in app._notifications),
            what="the soup's notification",
            timeout=300,
        )
        report = json.loads((runs / "g-soup" / "eval.json").read_text())
        assert {"validation", "in_domain_dev", "holdout"} <= set(report)
        assert json.loads((runs / "g-soup" / "config.json").read_text())["extra"]["soup"]["kept"] == ["g-s1", "g-s2"]
        assert isinstance(app.screen, ManyRunsScreen)


async def test_a_soup_that_fails_is_a_notification_and_the_app_goes_on(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _group(runs, "g", tiny_model_dir)
    shutil.rmtree(runs / "g-s2")  # one member left: a soup needs two
    app = make_app(runs_dir=runs, run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_until(pilot, lambda: app.active_pane == "runs", what="the runs pane")  # a loaded machine
        await pilot.press("G")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ManyRunsScreen) and app.screen.groups == ["g"],
            what="the groups view",
            timeout=120,
        )
        await pilot.press("s")
        await wait_until(
            pilot,
            lambda: any(
                "soup failed" in str(n.message) and "at least two" in str(n.message) for n in app._notifications
            ),
            what="the failure",
            timeout=120,
        )
        assert app.is_running and not (runs / "g-soup").exists()
