"""No keystroke is lost in the sentence box while a training and attributions run: a few hundred
characters, sent in bursts the way the terminal driver sends them (from its input thread), with
backspaces and ctrl+u among them, reach the box exactly and in order."""

from __future__ import annotations

from pathlib import Path

from helpers import warm
from helpers.bursts import burst
from helpers.tui import demo_run, small_cola_file, wait_until
from textual.widgets import Input

from workbench.core.base.config import TrainConfig
from workbench.tui.app import make_app
from workbench.tui.panes.train import TrainPane
from workbench.tui.widgets.attributions import ExplainPanel

BURSTS = (
    "The book was written by John. ",
    "Him likes she. ",
    "The student who did the homework left. ",
    "Colorless greem\bn ideas sleep furiously. ",
    "The cat sat on the mat while the dog barked. ",
    "Which book did you say that Mary read? ",
    "I wonder whom\b the dog chased. ",
    "a slip\x15The cat slept. ",
    "They said that 12345 children would arrive late, and 4 of them did.",
)


def typed_after(before: str, keys: str) -> str:
    """The box's text after KEYS, typed at its end: backspace deletes one character, ctrl+u all of them."""
    text = before
    for char in keys:
        text = text[:-1] if char == "\b" else "" if char == "\x15" else text + char
    return text


async def test_every_key_reaches_the_sentence_box_while_training_and_explaining(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    demo_run(runs, tiny_model_dir)
    data = small_cola_file(tmp_path, rows=400)
    app = make_app(model=str(tiny_model_dir), data=str(data), runs_dir=runs, run="demo-run", launcher=warm.launcher())
    app.load_on_start = False
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)  # the opened run's settings are in the form
        train = app.query_one(TrainPane)
        train.set_config(
            TrainConfig(
                model=str(tiny_model_dir),
                data=str(data),
                epochs=1000,
                batch_size=16,
                learning_rate=1e-3,
                precision="fp32",
                eval_batch_size=256,
            )
        )
        await pilot.press("2", "s")
        assert train.is_training, (train.problems, train.last_status)
        await wait_until(pilot, lambda: train.progress is not None, timeout=120, what="the first steps")
        try:
            box = app.query_one("#predict-input", Input)
            # from the Train pane (whose letters are keys: s starts, x stops, ? helps), 4 and a sentence at once:
            # every key after the 4 is the sentence's
            first = "The student who did the homework left early, said the teacher. "
            burst(app, "4" + first)
            for _ in range(100):  # up to 10 s for the keys to land
                if len(box.value) >= len(first):
                    break
                await pilot.pause(0.1)
            await pilot.pause(0.3)
            assert box.value == first, f"the box has {box.value!r}; the focus is on {app.focused}"
            assert app.focused is box
            typed = first
            for text in BURSTS:  # corrections inside bursts (Textual ran them after the keys behind them)
                burst(app, text + "\b\b")  # and at the end of each
                typed = typed_after(typed, text + "\b\b")
                await pilot.pause(0.4)  # predictions and attributions of the partial text land meanwhile
            await wait_until(pilot, lambda: len(box.value) >= len(typed), timeout=20, what="the keys to arrive")
            await pilot.pause(0.5)
            assert box.value == typed
            assert train.is_training, "the training ended before the typing did: make it longer"
            assert app.query_one(ExplainPanel).explanation is not None  # attributions ran meanwhile
        finally:
            train.action_stop()  # a failed check must not leave the training running
        await wait_until(pilot, lambda: not train.is_training, timeout=60, what="the stop")
