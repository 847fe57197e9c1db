"""What recording the map of the training data (p(gold) per sentence per epoch) costs a training epoch:
an A/B in one process, the same short training with and without the recording, alternated.

    python benchmarks/map_cost.py [--train-limit 800] [--rounds 3] [--out results/map_cost.txt]

Each round trains the embedded model for one epoch (validation and the final evaluation skipped) on the
first TRAIN_LIMIT training sentences twice,
once recording ("on") and once with the recording switched off ("off": Training._note_gold,
Training._record_gold and TrainingDynamics.save made no-ops), the order swapped every round. Timed per
arm: the epoch (the `Training._train_epoch` call, wall and process CPU time) plus the recording's work outside it
(`_record_gold` and saving training_dynamics.npz). Two figures: the ratio on/off of those times (the
median of the rounds' ratios: one round's two arms saw nearly the same machine load), and, in the "on"
arm, the time spent inside the recording's own functions as a share of the epoch (a direct measure,
immune to load swings between arms)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

import workbench  # noqa: E402,F401


class Clock:
    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def wrap(self, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - start
                self.cpu += time.process_time() - cpu

        return timed


def one_arm(record: bool, limit: int, folder: Path) -> dict[str, float]:
    from workbench.core.base.config import TrainConfig
    from workbench.core.runs import dynamics
    from workbench.core.training import finish as finish_module
    from workbench.core.training import train as train_module
    from workbench.core.training.loop import Training

    trainer = Training
    originals = {
        "_train_epoch": trainer._train_epoch,
        "_note_gold": trainer._note_gold,
        "_record_gold": trainer._record_gold,
        "save": dynamics.TrainingDynamics.save,
        "_validate": trainer._validate,
    }
    finish = {
        "calibrate_saved_model": finish_module.calibrate_saved_model,
        "evaluate_saved_model": finish_module.evaluate_saved_model,
    }
    epoch, recording, note = Clock(), Clock(), Clock()
    try:
        trainer._train_epoch = epoch.wrap(originals["_train_epoch"])
        # outside the measured window and the same in both arms: validation and the final evaluation are
        # skipped so that a round costs the epoch and little else (on a loaded machine they cost more than it)
        trainer._validate = lambda self: {"mcc": 0.0, "accuracy": 0.0, "n": 0, "loss": 0.0}
        finish_module.calibrate_saved_model = lambda *a, **k: {}  # type: ignore[assignment]
        finish_module.evaluate_saved_model = lambda *a, **k: {}  # type: ignore[assignment]
        if record:
            trainer._note_gold = note.wrap(originals["_note_gold"])  # inside the epoch
            trainer._record_gold = recording.wrap(originals["_record_gold"])
            dynamics.TrainingDynamics.save = recording.wrap(originals["save"])
        else:
            trainer._note_gold = lambda self, *a: None
            trainer._record_gold = lambda self: None
            dynamics.TrainingDynamics.save = lambda self, run_dir: run_dir
        config = TrainConfig(epochs=1, batch_size=32, train_limit=limit)  # (0 would pick 8 for one epoch)
        result = train_module.train(config, folder / ("on" if record else "off"))
        assert result.status == "done", result.error
    finally:
        for name, function in originals.items():
            setattr(dynamics.TrainingDynamics if name == "save" else trainer, name, function)
        for name, function in finish.items():
            setattr(finish_module, name, function)
    # the recording's own time: _note_gold (inside the epoch) + _record_gold and the save (after it)
    return {
        "epoch_wall": epoch.wall,
        "epoch_cpu": epoch.cpu,
        "after_wall": recording.wall,
        "after_cpu": recording.cpu,
        "recording_wall": note.wall + recording.wall,
        "recording_cpu": note.cpu + recording.cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-limit", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    def note(line: str) -> None:
        lines.append(line)
        print(line, flush=True)
        if args.out:
            Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")

    lines = [
        bc.machine(),
        f"embedded all-MiniLM-L6-v2, 1 epoch of {args.train_limit} sentences, batch 32, "
        f"{args.rounds} rounds, arms alternated",
    ]
    print(lines[0], flush=True)
    wall_ratios, cpu_ratios, shares = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        # the first training in a process pays for lazy imports and warming the allocator and kernels (seen:
        # 3x the wall time of the next one): one arm of each, not counted, before the rounds
        for record in (False, True):
            one_arm(record, args.train_limit, Path(tmp) / "warmup")
        note("warm-up: one arm of each run and discarded")
        for round_ in range(args.rounds):
            order = [True, False] if round_ % 2 == 0 else [False, True]
            figures = {}
            for record in order:
                load = bc.loadavg()
                figures[record] = one_arm(record, args.train_limit, Path(tmp) / f"r{round_}")
                figures[record]["load"] = load
            on, off = figures[True], figures[False]
            # "on" arm: the epoch's time includes _note_gold; _record_gold and the save at the epoch's
            # end and checkpoint are outside _train_epoch, so they are added to the epoch's time
            wall_on = on["epoch_wall"] + on["after_wall"]
            cpu_on = on["epoch_cpu"] + on["after_cpu"]
            wall_ratios.append(wall_on / off["epoch_wall"])
            cpu_ratios.append(cpu_on / off["epoch_cpu"])
            shares.append(on["recording_cpu"] / on["epoch_cpu"])
            note(
                f"round {round_ + 1} ({'on first' if order[0] else 'off first'}): epoch on {on['epoch_wall']:.1f} s "
                f"wall / {on['epoch_cpu']:.1f} s CPU (+ recording {on['recording_wall']:.3f} s wall, "
                f"{on['recording_cpu']:.3f} s CPU, all of it), off {off['epoch_wall']:.1f} s / "
                f"{off['epoch_cpu']:.1f} s; on/off wall {wall_ratios[-1]:.3f}, CPU {cpu_ratios[-1]:.3f}; "
                f"load {on['load']:.1f} / {off['load']:.1f}"
            )
    note(
        f"median on/off: wall {statistics.median(wall_ratios):.3f}, CPU {statistics.median(cpu_ratios):.3f} "
        f"(the bar: at most 1.03)"
    )
    note(
        f"recording's own CPU time / epoch CPU time (on arm): median {statistics.median(shares):.4%}, "
        f"max {max(shares):.4%}"
    )


if __name__ == "__main__":
    main()
