"""What a keystroke costs the app: typing into the Train form's learning-rate field and into the Predict
sentence box in the real app under Textual's Pilot (80x24, the tiny untrained model in a temp folder:
no weights to load). Prints, per box, CPU milliseconds per key (the app's process, Pilot included) and how
many times the screen's whole layout was computed for the keys typed.

  python benchmarks/keystrokes.py [--keys 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # helpers.runs: the tiny model


async def type_into(box: str, keys: int, model: Path, runs: Path) -> tuple[float, int]:
    from textual.screen import Screen
    from textual.widgets import Input

    from workbench.tui.app import make_app

    layouts = [0]
    original = Screen._refresh_layout

    def counted(self: Screen, *args: object, **kwargs: object) -> None:
        layouts[0] += 1
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    Screen._refresh_layout = counted  # type: ignore[method-assign]
    try:
        app = make_app(model=str(model), runs_dir=runs, notify=False)
        app.load_on_start = False
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2" if box == "form" else "4")
            await pilot.pause(0.5)
            target = app.query_one("#field-learning_rate" if box == "form" else "#predict-input", Input)
            target.focus()
            await pilot.pause(0.5)
            text = ("1e-4" if box == "form" else "the cat sat ") * keys
            layouts[0] = 0
            start = time.process_time()
            for char in text[:keys]:
                await pilot.press("space" if char == " " else char)
            cpu = time.process_time() - start
            return cpu / keys * 1000, layouts[0]
    finally:
        Screen._refresh_layout = original  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from helpers.runs import save_tiny_bert

    folder = Path(tempfile.mkdtemp())
    save_tiny_bert(folder / "model", seed=0)
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}; {args.keys} keys a round")
    for box in ("form", "predict"):
        rounds = range(args.rounds)
        figures = [asyncio.run(type_into(box, args.keys, folder / "model", folder / "runs")) for _ in rounds]
        per_key = [f[0] for f in figures]
        print(
            f"{box}: {statistics.median(per_key):.1f} ms CPU a key (min {min(per_key):.1f}, max {max(per_key):.1f}); "
            f"whole-screen layouts for {args.keys} keys: {[f[1] for f in figures]}"
        )


if __name__ == "__main__":
    main()
