"""A training started with `s` in the app, drawn in a real terminal, against `workbench train` in the same folder.

    python benchmarks/app_training.py [--epochs 1,8] [--rounds 2] [--train-limit 0]

Arm "app": `workbench` in a pseudo-terminal of 80x24 (the app drawing its charts at 2 Hz, the output read as a
terminal reads it), the Train pane's form set to EPOCHS by keys, started with `s` (the training is its own
process, which the app follows). Arm "cli": `workbench train --epochs EPOCHS` in the same runs folder. Arms
alternate, each round in the order app, cli. Each arm's sentences/s is the run's own: training sentences x
epochs / the training loop's time (the last step's elapsed_s in its metrics.jsonl), and its wall time from
the key (or the command) to the run's end (the finish after the loop included). Prints one line per arm and
the median ratio app/cli per EPOCHS. Run it on quiet cores: nothing else training or testing."""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402
from interactive import ANSI, READY, drain, read_until, workbench_in_pty  # noqa: E402


def _tabs_to_train_limit() -> int:
    from workbench.core.base.config import form_fields

    names = [f.name for f in form_fields()]
    return names.index("train_limit") - names.index("epochs")


TABS_TO_TRAIN_LIMIT = _tabs_to_train_limit()


def run_rate(run: Path) -> tuple[float, int]:
    """(sentences/s of the training loop, optimizer steps) from a finished run's metrics.jsonl."""
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    start = next(e for e in events if e["kind"] == "start")
    steps = [e for e in events if e["kind"] == "step"]
    return start["train_sentences"] * start["epochs"] / steps[-1]["elapsed_s"], len(steps)


def only_run(runs: Path) -> Path:
    (run,) = [folder for folder in runs.iterdir() if (folder / "metrics.jsonl").is_file()]
    return run


def ended(run: Path) -> bool:
    """Whether RUN's last event is its end (the file's tail only: the harness must cost the machine little)."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return False
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        last = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return b'"kind": "end"' in last


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process PID so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_app(runs: Path, epochs: int, train_limit: int, timeout: float = 3600.0) -> tuple[float, float, int, float]:
    """The app arm: (sentences/s, wall seconds from the key to the end, steps, the app's CPU seconds meanwhile)."""
    with workbench_in_pty(["--runs", str(runs)], (24, 80)) as (pid, fd):
        read_until(fd, lambda t: READY.search(t) is not None, 120)
        keys = [b"2", b"\t", b"\t", b"\t", b"\x15", str(epochs).encode()]  # Train, tab to epochs, ctrl+u, N
        if train_limit:
            keys += [b"\t"] * TABS_TO_TRAIN_LIMIT + [b"\x15", str(train_limit).encode()]
        for key in keys:
            os.write(fd, key)
            time.sleep(0.4)
            drain(fd)
        os.write(fd, b"\r")  # enter in a field starts the training
        started, app_cpu = time.perf_counter(), cpu_seconds(pid)
        deadline, checked = started + timeout, 0.0
        while time.perf_counter() < deadline:  # read what the app draws, as a terminal does
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    os.read(fd, 65536)
                except OSError:
                    break
            if time.perf_counter() - checked > 1.0:
                checked = time.perf_counter()
                folders = [f for f in runs.iterdir() if (f / "metrics.jsonl").is_file()] if runs.is_dir() else []
                if folders and ended(folders[0]):
                    break
        wall = time.perf_counter() - started
        app_cpu = cpu_seconds(pid) - app_cpu
        run = only_run(runs)
        config = json.loads((run / "config.json").read_text())
        assert config["epochs"] == epochs and config["train_limit"] == train_limit, config
        screen = ANSI.sub(b"", read_until(fd, lambda t: b"done" in t or b"failed" in t, 60))
        assert b"failed" not in screen[-3000:], screen[-3000:]
    rate, steps = run_rate(run)
    return rate, wall, steps, app_cpu


def in_cli(runs: Path, epochs: int, train_limit: int) -> tuple[float, float, int, float]:
    """The CLI arm: (sentences/s, wall seconds of the command, steps, 0.0: no app)."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "train",
            "--runs",
            str(runs),
            "--epochs",
            str(epochs),
            "--train-limit",
            str(train_limit),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    rate, steps = run_rate(only_run(runs))
    return rate, wall, steps, 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", default="1,8", help="the default recipe at these epochs (comma-separated)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=0, help="train on the first N sentences (0: all)")
    args = parser.parse_args()
    print(bc.machine(), flush=True)
    for epochs in [int(e) for e in args.epochs.split(",")]:
        rates: dict[str, list[float]] = {"app": [], "cli": []}
        for round_number in range(1, args.rounds + 1):
            for arm, measure in (("app", in_app), ("cli", in_cli)):
                with tempfile.TemporaryDirectory() as folder:
                    rate, wall, steps, app_cpu = measure(Path(folder) / "runs", epochs, args.train_limit)
                rates[arm].append(rate)
                drawing = f", the app's CPU {app_cpu:.1f} s ({app_cpu / wall:.1%} of a core)" if arm == "app" else ""
                print(
                    f"{epochs} epoch(s), round {round_number}, {arm}: {rate:.1f} sentences/s in the training loop "
                    f"({steps} steps), {wall:.1f} s from start to end{drawing} (load {bc.loadavg():.2f})",
                    flush=True,
                )
        app, cli = statistics.median(rates["app"]), statistics.median(rates["cli"])
        print(f"{epochs} epoch(s): app {app:.1f} / cli {cli:.1f} sentences/s (medians) = {app / cli:.3f}x", flush=True)


if __name__ == "__main__":
    main()
