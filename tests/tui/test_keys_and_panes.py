"""Keys and focus, the Runs and Predict panes, Train extras, charts,
notifications and help. Pilot tests drive the real app; no clock or seed decides an outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.tui import DEMO_RUN, FAILED_REASON, demo_run, failed_run, wait_until
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from workbench.core.runs.lock import RunLock
from workbench.tui.app import PANE_CLASSES, make_app
from workbench.tui.messages import SendToPredict, TrainFinished, TrainProgress
from workbench.tui.notify import terminal_notification
from workbench.tui.panes.data import DataPane
from workbench.tui.panes.predict import PredictPane
from workbench.tui.panes.runs import RunsPane
from workbench.tui.panes.train import TrainPane
from workbench.tui.panes.train_text import patience_text
from workbench.tui.screens.confirm import Confirm
from workbench.tui.screens.help import HelpScreen, help_text
from workbench.tui.screens.review import ReviewScreen
from workbench.tui.screens.run_detail import RunDetailScreen
from workbench.tui.screens.training_map import TrainingMapScreen
from workbench.tui.widgets.charts import SeriesChart, format_tick, integer_ticks, smooth, thin
from workbench.tui.widgets.run_charts import RunCharts, run_series

SIZE = (80, 24)


def text_of(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.query_one(selector, Static).render())


def footer(app) -> list[str]:  # type: ignore[no-untyped-def]
    """The key line's entries as the screen shows them ("esc Leave field")."""
    from workbench.tui.widgets.keyline import KeyLine

    return [f"{key} {description}" for key, description, _enabled in app.query_one(KeyLine).keys]


def demo_app(tiny_model_dir: Path, tmp_path: Path, **kwargs):  # type: ignore[no-untyped-def]
    demo_run(tmp_path / "runs", tiny_model_dir)
    app = make_app(runs_dir=tmp_path / "runs", **kwargs)
    app.load_on_start = False
    return app


# ---------------------------------------------------------------- keys and focus


async def test_a_digit_in_a_field_is_added_not_replacing_and_escape_is_the_way_out(tmp_path: Path) -> None:
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "tab")  # into the form's first field (model)
        field = app.focused
        assert isinstance(field, Input) and field.id == "field-model"
        before = field.value
        await pilot.press("3")
        assert field.value == before + "3"  # nothing was selected: the text stays, the digit is added
        assert app.active_pane == "train"
        await pilot.pause()
        assert "esc Leave field" in footer(app)  # the footer says how out
        await pilot.press("backspace", "escape")
        assert app.focused is app.query_one("#train-progress") and field.value == before  # the pane's keys again
        assert "esc Leave field" not in footer(app)
        await pilot.press("5")
        assert app.active_pane == "runs"


async def test_alt_digits_switch_panes_from_inside_a_field(tiny_model_dir: Path, tmp_path: Path) -> None:
    from textual._xterm_parser import XTermParser

    app = make_app(model=str(tiny_model_dir), runs_dir=tmp_path / "runs")  # (the tiny model answers)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", *"The cat")
        box = app.query_one("#predict-input", Input)
        assert app.focused is box
        await pilot.press("alt+2")  # as a terminal with the kitty keyboard protocol sends it
        assert app.active_pane == "train" and box.value == "The cat"
        await pilot.press("alt+4", "s")  # back to Predict (its history), and typing goes on in the box
        assert app.focused is box and box.value == "The cats"
        # xterm and tmux send alt+3 as ESC 3, which Textual reads as "£": a pane key, not text
        over_ssh = [event.key for event in XTermParser().feed("\x1b3")]
        await pilot.press(*over_ssh)
        assert app.active_pane == "evaluate" and box.value == "The cats", over_ssh
        await pilot.press("alt+4", "escape")  # the sentence box, then out of it to the history
        assert app.focused is app.query_one("#predict-history")
        await pilot.press("1")
        assert app.active_pane == "data" and box.value == "The cats"


async def test_digits_switch_panes_until_a_box_has_the_focus(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A pane shown with a digit never traps the digits after it: 1 2 3 4 5 twice ends on Runs, with
    nothing typed into Predict's box; typing a sentence there puts the focus in the box, where digits are
    text and the key line says how to leave (esc) and how to switch panes (alt+1…5)."""
    app = make_app(model=str(tiny_model_dir), runs_dir=tmp_path / "runs")  # (the tiny model answers)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"1234512345")
        box = app.query_one("#predict-input", Input)
        assert app.active_pane == "runs" and box.value == ""
        await pilot.press("4", "5")
        assert app.active_pane == "runs" and box.value == ""
        await pilot.press("4")
        assert app.active_pane == "predict" and app.focused is not box
        assert "alt+1…5 Panes" not in footer(app)
        await pilot.press(*"The 3 cats sat.")  # the first letter goes into the box, then digits are text
        assert app.focused is box and box.value == "The 3 cats sat." and app.active_pane == "predict"
        await pilot.pause()
        assert footer(app)[:2] == ["esc To history", "alt+1…5 Panes"]
        await pilot.press("escape", "2")  # out of the box: digits switch panes again
        assert app.active_pane == "train" and box.value == "The 3 cats sat."
        await pilot.press("tab")  # into the Train form's first field: the key line says the same there
        await pilot.pause()
        assert isinstance(app.focused, Input) and footer(app)[:2] == ["esc Leave field", "alt+1…5 Panes"]


async def test_from_the_history_the_box_takes_the_typing_and_the_pane_keys_still_work(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from textual import events

    app = make_app(model=str(tiny_model_dir), runs_dir=tmp_path / "runs")  # (the tiny model answers)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", *"The cat.", "escape")
        box = app.query_one("#predict-input", Input)
        history = app.query_one("#predict-history")
        assert app.focused is history and box.value == "The cat."
        await pilot.press("question_mark")  # a key the pane answers to keeps its meaning: help
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "slash")  # / goes into the box, its text kept
        assert app.focused is box and box.value == "The cat."
        await pilot.press("escape", "ctrl+u", *"A dog.")  # an editing key acts in the box: a new sentence
        assert app.focused is box and box.value == "A dog."
        await pilot.press("escape", "backspace", "!")
        assert box.value == "A dog!"
        await pilot.press("escape")
        app.query_one(PredictPane).post_message(events.Paste("Him likes she.\nsecond line"))
        await pilot.pause()
        assert app.focused is box and box.value == "A dog!Him likes she."


async def test_a_burst_of_pane_keys_and_a_sentence_lands_in_order(tmp_path: Path) -> None:
    """Keys that arrive together (a fast typist, a paste into the terminal) are read before the first is
    handled: each must still go where the keys before it sent the focus."""
    from helpers.bursts import burst

    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")  # every pane composed
        burst(app, "123454The cat sat.")
        box = app.query_one("#predict-input", Input)
        await wait_until(pilot, lambda: box.value.endswith("sat."), what="the keys")
        assert box.value == "The cat sat." and app.active_pane == "predict"
        burst(app, "\x15A dog barked 3 times.")  # in the box now: ctrl+u empties it, digits are text
        await wait_until(pilot, lambda: box.value.endswith("times."), what="the keys")
        assert box.value == "A dog barked 3 times." and app.active_pane == "predict"


async def test_the_key_line_leaves_out_whole_keys_where_they_do_not_fit(tmp_path: Path) -> None:
    """At 60 columns the key line read "... ? Help q Qui": now only whole entries, the help's key kept."""
    from workbench.tui.widgets.keyline import KeyLine

    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=(60, 20)) as pilot:
        for keys in (["1"], ["2"], ["3"], ["4"], ["4", "T"], ["5"]):  # every pane, and Predict's box
            await pilot.press(*keys)
            await pilot.pause()
            key_line = app.query_one(KeyLine)
            line = key_line.render().plain
            assert len(line) <= 60, line
            position = 0
            for entry in footer(app):  # the line is some of the entries, whole, in their order
                if line.startswith(entry, position):
                    position += len(entry) + 1
            assert position >= len(line), (line, footer(app))
            assert "Help" in line, line


# ---------------------------------------------------------------- Runs pane


async def test_runs_pane_cursor_order_marks_details_and_refresh(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    failed_run(runs, "zz-failed", started="2024-02-01T00:00:00")
    app = make_app(runs_dir=runs, run=DEMO_RUN)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        table = app.query_one("#runs-table", DataTable)
        pane = app.query_one(RunsPane)
        await wait_until(pilot, lambda: table.row_count == 2, what="the runs")
        assert [info.id for info in pane.runs] == ["zz-failed", DEMO_RUN]  # newest first
        assert pane.highlighted().id == DEMO_RUN  # the cursor starts on the opened run
        await wait_until(pilot, lambda: "⏎ Open" in footer(app), what="the runs table's keys")  # at a refresh
        assert "run demo-run" in text_of(app, "#runs-caption")  # the charts' caption names the charted run
        await pilot.press("up")
        assert pane.highlighted().id == "zz-failed"
        assert "run demo-run" in text_of(app, "#runs-caption")  # still the charted one, not the highlighted
        await pilot.press("space")
        assert pane.marked == ["zz-failed"] and pane.highlighted().id == "zz-failed"  # marked, not moved
        await pilot.press("i")
        assert isinstance(app.screen, RunDetailScreen)
        detail = str(app.screen.query_one("#detail-text", Static).render())
        assert FAILED_REASON in detail.replace("\n", " ")  # the whole reason, not cut
        await pilot.press("escape", "g")
        await wait_until(pilot, lambda: "refreshed" in text_of(app, "#status"), what="the refresh note")
        assert "2 runs" in text_of(app, "#status")


# ---------------------------------------------------------------- Predict pane


async def test_predict_history_newest_first_reusable_and_cleared_after_asking(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    app = demo_app(tiny_model_dir, tmp_path, run=DEMO_RUN)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        pane = app.query_one(PredictPane)
        for count, sentence in enumerate(("First one.", "Second one."), start=1):
            await pilot.press("ctrl+u", *sentence, "enter")  # (ctrl+u from the history: into the box, emptied)
            await wait_until(pilot, lambda n=count: len(pane.history) == n, what="a prediction")  # type: ignore[misc]
        history = app.query_one("#predict-history", DataTable)
        assert str(history.get_row_at(0)[-1]) == "Second one."  # newest on top
        logits = text_of(app, "#predict-info")
        assert logits.index("acceptable") < logits.index("unacceptable")  # named, as the bars (acceptable first)
        await pilot.press("escape", "down", "enter")  # the older one, back into the box
        assert pane.box.value == "First one." and app.focused is pane.box
        await pilot.press("escape", "ctrl+l")
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        assert len(pane.history) == 2
        await pilot.press("ctrl+l", "y")
        assert pane.history == [] and history.row_count == 0


async def test_a_sentence_from_evaluate_keeps_its_true_label(tiny_model_dir: Path, tmp_path: Path) -> None:
    app = demo_app(tiny_model_dir, tmp_path, run=DEMO_RUN)
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(SendToPredict("The book was written John by.", 0))
        pane = app.query_one(PredictPane)
        await wait_until(pilot, lambda: pane.latest is not None, what="a prediction")
        await pilot.pause(0.1)
        info = text_of(app, "#predict-info")
        assert "true label unacceptable" in info and ("right" in info or "wrong" in info)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(pane.history) == 1)
        assert pane.history[0].true_label == 0
        assert str(app.query_one("#predict-history", DataTable).get_row_at(0)[2]) == "unacc"
        await pilot.press("end", "s")  # edited: no longer the sentence whose label we know
        await wait_until(pilot, lambda: pane.latest is not None and pane.latest.sentence.endswith("s"))
        await pilot.pause(0.1)
        assert "true label" not in text_of(app, "#predict-info")


# ---------------------------------------------------------------- Train pane extras


def step(n: int, grad_norm: float | None = 1.5) -> dict[str, object]:
    return {
        "kind": "step",
        "epoch": 1 + (n - 1) // 10,
        "step": n,
        "epoch_step": 1 + (n - 1) % 10,
        "steps_per_epoch": 10,
        "total_steps": 60,
        "loss": 1 / n,
        "lr": 1e-4,
        "grad_norm": grad_norm,
        "sentences_per_s": 50.0,
        "elapsed_s": n * 1.0,
        "eta_s": (60 - n) * 1.0,
    }


def epoch(n: int, mcc: float, best: bool) -> dict[str, object]:
    return {
        "kind": "epoch",
        "epoch": n,
        "step": 10 * n,
        "train_loss": 0.5,
        "val_n": 100,
        "val_loss": 0.6,
        "val_accuracy": 0.7,
        "val_mcc": mcc,
        "best": best,
        "elapsed_s": 10.0 * n,
    }


def test_patience_left_counts_epochs_since_the_best() -> None:
    series = run_series([epoch(1, 0.2, True), epoch(2, 0.3, True), epoch(3, 0.25, False), epoch(4, 0.1, False)])  # type: ignore[list-item]
    assert series.best == (2.0, 0.3) and series.epochs_since_best == 2
    assert patience_text(3, series.epochs_since_best) == "patience 1/3 left"
    assert patience_text(0, 5) == ""


async def test_train_pane_grad_norm_patience_and_system_line(tmp_path: Path) -> None:
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TrainPane)
        pane.patience = 2
        pane.live_run = "live"
        pane.post_message(TrainProgress("live", [step(n, None if n == 3 else 0.5 * n) for n in range(1, 21)]))  # type: ignore[misc]
        charts = app.query_one("#train-charts", RunCharts)
        await wait_until(pilot, lambda: charts.chart("loss").points("loss") == 20)
        assert charts.chart("grad_norm").points("grad_norm") == 19  # a step without a norm (skipped) is not drawn
        charts.add_events([epoch(1, 0.3, True), epoch(2, 0.2, False)])  # type: ignore[list-item]
        pane.show_progress()
        assert "patience 1/2 left" in text_of(app, "#train-progress")
        validation = charts.chart("validation")
        assert validation.highlight is not None and "0.300@1" in validation.title_for(80)
        # the system line: core SystemMonitor, sampled by a worker at most once a second
        await wait_until(pilot, lambda: "CPU " in text_of(app, "#train-progress"), timeout=10, what="the system line")
        assert "RAM " in text_of(app, "#train-progress").splitlines()[2]


async def test_log_scale_and_smoothing_keys(tmp_path: Path) -> None:
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "c")  # the form away: the pane has the keys
        chart = app.query_one("#chart-loss", SeriesChart)
        assert not chart.log_y and chart.smoothing == 0.9
        await pilot.press("l")
        assert chart.log_y and "log" in text_of(app, "#status")
        await pilot.press("m")
        assert chart.smoothing == 0.95 and "0.95" in text_of(app, "#status")
        await pilot.press("m", "m")
        assert chart.smoothing == 0.0  # off: the raw line
        for value in (0.5, 0.25, 0.125):
            chart.add("loss", len(chart.series["loss"]) + 1, value)
        assert [y for _, y in chart.drawn("loss")] == [0.5, 0.25, 0.125]


# ---------------------------------------------------------------- charts


def test_ticks_are_whole_numbers_and_tiny_values_scientific() -> None:
    assert integer_ticks(1, 30, 4) == [10, 20, 30]
    assert integer_ticks(1, 3, 9) == [1, 2, 3]
    assert integer_ticks(0.5, 1.5, 4) == [1]  # one epoch: one tick, never 0.75
    assert all(isinstance(t, int) for t in integer_ticks(1, 1910, 5))
    assert format_tick(3.21e-5, scientific=True) == "3.2e-5"
    assert format_tick(1e-4, scientific=True) == "1e-4"
    assert format_tick(1910.0) == "1910"


def test_smoothing_and_thinning() -> None:
    assert smooth([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # bias-corrected from the first point
    assert smooth([1.0, 3.0], 0.0) == [1.0, 3.0]
    points = [(float(i), float(i % 7)) for i in range(5000)]
    thinned = thin(points, 100, extremes=True)
    assert len(thinned) <= 202 and thinned[-1] == points[-1]
    assert max(y for _, y in thinned) == 6.0 and min(y for _, y in thinned) == 0.0  # the noise stays visible


async def test_a_pane_key_is_not_undone_by_the_start_news_handled_after_it(tmp_path: Path) -> None:
    """When the app starts, the tab bar announces its first tab and the first focused widget its pane; on a
    busy machine a pane key can be handled first (seen under load: the key undone, the focus on a hidden
    pane). Here those two messages are delivered after the key, as the loaded machine delivered them."""
    from textual.widgets import TabbedContent, TabPane, Tabs

    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        assert app.active_pane == "runs"
        tabs = app.query_one(TabbedContent).query_one(Tabs)
        tabs.post_message(Tabs.TabActivated(tabs, tabs.query_one("#--content-tab-data")))  # the bar's first tab
        data = app.query_one("TabPane#data", TabPane)
        data.post_message(TabPane.Focused(data))  # the data pane's widget focused first
        await pilot.pause(0.2)
        assert app.active_pane == "runs"
        assert app.focused is not None and app.query_one(RunsPane) in app.focused.ancestors_with_self
        await pilot.press("2")  # a tab the user chooses still switches
        assert app.active_pane == "train"


async def test_legends_are_off_the_data_and_a_single_epoch_is_a_line(tmp_path: Path) -> None:
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "c")
        charts = app.query_one("#train-charts", RunCharts)
        charts.add_events([{"kind": "start", "epochs": 1, "resumed_at_step": None}, epoch(1, 0.41, True)])  # type: ignore[list-item]
        chart = charts.chart("validation")
        await wait_until(pilot, lambda: "★" in chart.render().plain, what="the best epoch drawn")  # redraws are capped
        title, *plot = chart.render().plain.splitlines()
        assert "★" in title and "MCC" in title  # the legend and the best epoch live in the title line
        body = "\n".join(plot)
        assert "MCC" not in body and "acc" not in body  # nothing written over the data
        assert body.count("⣀") + body.count("⠤") + body.count("⠒") + body.count("⠉") >= 4  # MCC: a level line


# ---------------------------------------------------------------- notifications


def test_the_notification_sequences() -> None:
    plain = terminal_notification("run x done", "holdout; MCC\x07 0.4", in_tmux=False)
    assert plain == "\x1b]777;notify;run x done;holdout, MCC  0.4\x07\x1b]9;run x done: holdout, MCC  0.4\x07"
    wrapped = terminal_notification("t", "b", in_tmux=True)
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]777;") and wrapped.endswith("\x1b\\")


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_run_that_ends_rings_and_notifies_unless_turned_off(tmp_path: Path, enabled: bool) -> None:
    app = make_app(runs_dir=tmp_path / "runs", notify=enabled)
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        written: list[str] = []
        app._driver.write = written.append  # type: ignore[union-attr,method-assign]  # what reaches the terminal
        app.post_message(TrainFinished("r1", "failed", "out of memory"))  # as the training worker reports its end
        await wait_until(pilot, lambda: "failed" in text_of(app, "#status"))
    sent = "".join(written)
    if enabled:
        assert sent.startswith("\x07")  # the bell
        assert "\x1b]777;notify;CoLA Workbench: run r1 failed;out of memory\x07" in sent
        assert "\x1b]9;CoLA Workbench: run r1 failed: out of memory\x07" in sent
    else:
        assert "\x1b]" not in sent and "\x07" not in sent


def test_the_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_NOTIFY", "0")
    assert not make_app().notify_terminal
    assert make_app(notify=True).notify_terminal  # the command line wins
    monkeypatch.delenv("WORKBENCH_NOTIFY")
    assert make_app().notify_terminal
    from workbench.cli import build_parser

    for argv in (["--no-notify"], ["--no-notify", "open", "r"], ["open", "r", "--no-notify"]):
        assert build_parser().parse_args(argv).no_notify, argv
    assert not build_parser().parse_args(["open", "r"]).no_notify


async def test_a_detached_run_seen_live_is_announced_when_it_ends(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    metrics = runs / DEMO_RUN / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:-1]))
    app = make_app(runs_dir=runs, notify=True)
    app.load_on_start = False
    lock = RunLock(runs / DEMO_RUN)
    lock.__enter__()
    try:
        async with app.run_test(size=SIZE) as pilot:
            written: list[str] = []
            app._driver.write = written.append  # type: ignore[union-attr,method-assign]
            await app.open_run(DEMO_RUN)
            train = app.query_one(TrainPane)
            await wait_until(pilot, lambda: train.live_run == DEMO_RUN and train.progress is not None)
            with metrics.open("a") as handle:
                handle.write(lines[-1])
            lock.__exit__()
            await wait_until(pilot, lambda: train.live_run is None, what="the end of the followed run")
            await pilot.pause(0.1)
            assert "\x1b]777;notify;CoLA Workbench: run demo-run done;" in "".join(written)
    finally:
        if RunLock.is_locked(runs / DEMO_RUN):
            lock.__exit__()


# ---------------------------------------------------------------- help


async def test_help_lists_every_key_of_every_pane(tmp_path: Path) -> None:
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        from rich.console import Console

        console = Console(width=200, record=True)
        console.print(help_text(app.screen.sections))
        shown = console.export_text()
        for pane_class in PANE_CLASSES:
            for binding in Binding.make_bindings(pane_class.BINDINGS):
                assert (binding.tooltip or binding.description) in shown, (pane_class.__name__, binding.key)
        for screen_class in (TrainingMapScreen, ReviewScreen):  # the views a pane opens have their keys there too
            for binding in Binding.make_bindings(screen_class.BINDINGS):
                assert (binding.tooltip or binding.description) in shown, (screen_class.__name__, binding.key)
        for must in (
            "alt+1…5",
            "^l",
            "clear the history (asks first)",
            "gradient norm",
            "log / linear",
            "loss smoothing",
            "whole reason",
        ):
            assert must in shown, must


# ---------------------------------------------------------------- the Data pane


async def test_data_pane_end_lands_on_the_last_row_and_the_detail_shows_everything(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    app = make_app(model=str(tiny_model_dir), runs_dir=tmp_path / "runs")
    async with app.run_test(size=(60, 20)) as pilot:
        pane = app.query_one(DataPane)
        await wait_until(pilot, lambda: pane.cola is not None and pane.tokenizer is not None, what="data")
        table = pane.table
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        shown = table.rows_shown()
        assert shown[-1] == table.rows[-1] and len(shown) == table.page  # the page is full: no blank below
        line, source, label, sentence = table.rows[-1]
        detail = text_of(app, "#data-tokens")
        assert sentence in detail and source in detail and "[CLS]" in detail
        assert ("acceptable" if label else "unacceptable") in detail
        await pilot.press("s", "s", "s", "s")  # four presses: round to train again, none lost or doubled
        assert pane.split == "train" and table.cursor_row == 0


@pytest.mark.parametrize("asked", [None, "full"])
async def test_nothing_slides_unless_textual_animations_asks_for_it(
    asked: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over SSH an animation's frames are bytes and CPU beside a training: the tabs' underline jumps to
    the new pane, unless TEXTUAL_ANIMATIONS says otherwise."""
    from textual.widgets import TabbedContent
    from textual.widgets._tabs import Underline

    if asked is None:
        monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
    else:
        monkeypatch.setenv("TEXTUAL_ANIMATIONS", asked)
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await app.mount_panes()
        await pilot.pause()
        underline = app.query_one(Underline)
        app.query_one(TabbedContent).active = "runs"
        await pilot.pause(0.1)  # past the tabs' 0.02 s delay, within a 0.3 s slide
        sliding = app.animator.is_being_animated(underline, "highlight_start")
        assert sliding == (asked == "full")


async def test_a_burst_of_tabs_and_digits_fills_the_field_the_tabs_reached(tmp_path: Path) -> None:
    """Tab tab tab ctrl+u 3 typed fast in the Train pane (tmux, or a laggy SSH link): the digit is the
    epochs field's text, not a pane key read before the tabs had moved the focus."""
    from helpers.bursts import burst

    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        train = app.query_one(TrainPane)
        train.show_form(True)
        train.focus_default()
        await pilot.pause()
        burst(app, "\t\t\t\x153")
        epochs = app.query_one("#field-epochs", Input)
        await wait_until(pilot, lambda: epochs.value == "3" or app.active_pane != "train", what="the keys")
        assert app.active_pane == "train" and app.focused is epochs and epochs.value == "3"


async def test_an_opened_runs_form_comes_with_c_and_takes_the_keys_typed_behind_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """An opened run shows its charts; c brings its settings' form, whose fields take the keys typed right
    behind the c: "c tab tab tab ctrl+u 5" fills the epochs field, the run's other settings kept."""
    app = demo_app(tiny_model_dir, tmp_path, run=DEMO_RUN)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        train = app.query_one(TrainPane)
        assert not app.query_one("#train-form").display
        await pilot.press("c", "tab", "tab", "tab", "ctrl+u", "5")
        epochs = app.query_one("#field-epochs", Input)
        await wait_until(pilot, lambda: epochs.value == "5" or app.active_pane != "train", what="the keys")
        assert app.active_pane == "train" and app.focused is epochs and epochs.value == "5"
        config, problems = train.read_form()
        assert config is not None and not problems
        # the demo run's own settings (320 sentences; its batch 32 is what 0 picks), the epochs as typed
        assert (config.epochs, config.batch_size, config.train_limit) == (5, 0, 320)
        assert app.query_one("#field-train_limit", Input).value == "320"


async def test_typing_in_a_field_never_lays_the_whole_screen_out_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key typed in the Train form or the sentence box redraws its field (the form's verdict line when it changes),
    never the layout of every widget on the screen: 180 widgets with the form shown."""
    from textual.screen import Screen

    layouts: list[Screen] = []
    original = Screen._refresh_layout

    def counted(self: Screen, *args: object, **kwargs: object) -> None:
        layouts.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Screen, "_refresh_layout", counted)
    app = make_app(runs_dir=tmp_path / "runs")
    app.load_on_start = False
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        field = app.query_one("#field-seed", Input)
        field.focus()
        await pilot.pause()
        layouts.clear()
        await pilot.press(*"123")  # added after the seed, valid at every key
        assert field.value == "42123" and not app.query_one(TrainPane).problems
        assert layouts == []
        await pilot.press("x")  # a problem: the verdict says so (its height may change: laid out then)
        assert "seed" in app.query_one(TrainPane).problems
        await pilot.press("alt+4")
        box = app.query_one("#predict-input", Input)
        await pilot.pause()
        layouts.clear()
        await pilot.press(*"The cat")
        assert box.value == "The cat" and layouts == []
