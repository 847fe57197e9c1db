"""A 1-epoch training (batch 8, about 20 steps a second) started in the app against the same training in a
plain thread: sentences/s over 20 s after step 20, alternated.

    python benchmarks/app_training.py [--train-limit 4000] [--rounds 3]

The app runs headless (Textual's run_test, on the Train pane): no terminal output, whose cost a real terminal
adds (benchmarks/interactive.py --only trainspeed measures in a pty). What it isolates is the app's thread
sharing the GIL with the training."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

WINDOW = 20.0  # seconds timed, after step FIRST
FIRST = 20


async def in_app(limit: int) -> float:
    """Steps/s of the training the Train pane starts (its worker thread, its messages, its charts)."""
    from workbench.core.base.config import TrainConfig
    from workbench.core.base.layout import new_run_id, run_path
    from workbench.tui.app import make_app
    from workbench.tui.panes.train import TrainPane

    runs = Path(tempfile.mkdtemp())
    app = make_app(runs_dir=runs, notify=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(1.0)
        pane = app.query_one(TrainPane)
        pane.launch(TrainConfig(epochs=1, train_limit=limit), run_path(runs, new_run_id(runs)), resume=False)
        start, first = 0.0, 0
        while pane.is_training:
            await asyncio.sleep(0.2)
            progress = pane.progress
            if progress and not start and progress["step"] >= FIRST:
                start, first = time.perf_counter(), progress["step"]
            if start and time.perf_counter() - start > WINDOW:
                break
        rate = (pane.progress["step"] - first) / (time.perf_counter() - start)
        pane.stop_event.set()
        while pane.is_training:
            await asyncio.sleep(0.2)
    return rate


def in_a_thread(limit: int) -> float:
    """Steps/s of the same training by core train() in a plain thread, the main thread waiting."""
    from workbench.core.base.config import TrainConfig
    from workbench.core.training.train import train

    stop = threading.Event()
    steps: list[float] = []

    def on_event(event: Any) -> None:
        if event.get("kind") == "step":
            steps.append(time.perf_counter())
            if len(steps) > FIRST and steps[-1] - steps[FIRST] > WINDOW:
                stop.set()

    folder = Path(tempfile.mkdtemp())
    worker = threading.Thread(target=lambda: train(TrainConfig(epochs=1, train_limit=limit), folder / "run",
                                                   on_event=on_event, stop=stop))
    worker.start()
    worker.join()
    return (len(steps) - FIRST - 1) / (steps[-1] - steps[FIRST])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-limit", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(bc.machine(), flush=True)
    rates: dict[str, list[float]] = {"thread": [], "app": []}
    for round_number in range(args.rounds):
        rates["thread"].append(in_a_thread(args.train_limit) * 8)
        rates["app"].append(asyncio.run(in_app(args.train_limit)) * 8)
        print(f"round {round_number + 1}: plain thread {rates['thread'][-1]:.0f} sentences/s, in the app "
              f"{rates['app'][-1]:.0f} sentences/s; load {bc.loadavg():.2f}", flush=True)
    print(f"median: plain thread {statistics.median(rates['thread']):.0f}, in the app "
          f"{statistics.median(rates['app']):.0f} sentences/s (batch 8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
