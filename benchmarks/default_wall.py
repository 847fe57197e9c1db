"""The default run's whole wall time, `workbench train` with no options, for two source trees of the workbench.

    git worktree add /tmp/before COMMIT
    python benchmarks/default_wall.py --trees /tmp/before,. [--rounds 2] [--epochs 0] [--json out.json]

Each arm is `python -m workbench.cli train --runs TMP` in a fresh process, its `workbench` package taken from the
tree (PYTHONPATH; same virtual environment, same bundled data, the embedded model), the trees alternated and the
order rotated every round. Per run: the command's wall time (what a user waits for: start-up, the loop,
validation, the finish) and its parts (±1 s) from the run's own metrics.jsonl, whose events keep whole seconds:
start-up (the command's start to the run's start event), the loop (the start event to the last step), the
finish (the last step to the end event). `--epochs 0` is the default (8); `--epochs 1` the 1-epoch default.
Run it on quiet cores: nothing else training.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402


def tree_label(tree: Path) -> str:
    """The tree's commit (short hash) where it is a git checkout, else its path."""
    found = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    if found.returncode != 0:
        return str(tree)
    return found.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def seconds_between(a: str, b: str) -> float:
    """Seconds from A to B, ISO times with or without an offset (without one: this machine's local time)."""
    return datetime.fromisoformat(b).timestamp() - datetime.fromisoformat(a).timestamp()


def one_run(tree: Path, epochs: int) -> dict[str, float]:
    """One default training with TREE's workbench: its wall time and parts."""
    with tempfile.TemporaryDirectory(prefix="default-wall-") as tmp:
        runs = Path(tmp) / "runs"
        command = [sys.executable, "-m", "workbench.cli", "train", "--runs", str(runs)]
        if epochs:
            command += ["--epochs", str(epochs)]
        environment = {**os.environ, "PYTHONPATH": str(tree)}
        launched = datetime.now().astimezone()
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=tmp, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - started
        (run,) = [f for f in runs.iterdir() if (f / "metrics.jsonl").is_file()]
        events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    start = next(e for e in events if e["kind"] == "start")
    last_step = [e for e in events if e["kind"] == "step"][-1]
    end = next(e for e in events if e["kind"] == "end")
    return {
        "wall_s": wall,
        "startup_s": seconds_between(launched.isoformat(), start["time"]),
        "loop_s": seconds_between(start["time"], last_step["time"]),
        "finish_s": seconds_between(last_step["time"], end["time"]),
        "holdout_mcc": float(end.get("holdout_mcc", float("nan"))),
        "load": bc.loadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--trees", required=True, help="two (or more) source trees, comma-separated, the baseline first"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=0, help="0: the default run's epochs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    labels = [tree_label(t) for t in trees]
    labels = [label if labels.count(label) == 1 else f"{label}#{i + 1}" for i, label in enumerate(labels)]
    print(f"machine: {bc.machine()}; amx: {'yes' if bc.has_amx() else 'no'}; load {bc.loadavg():.2f}", flush=True)
    print(f"trees: {', '.join(f'{label} ({tree})' for label, tree in zip(labels, trees, strict=True))}", flush=True)
    results: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    for r in range(args.rounds):
        order = list(zip(labels, trees, strict=True))
        order = order[r % len(order) :] + order[: r % len(order)]
        for label, tree in order:
            got = one_run(tree, args.epochs)
            results[label].append(got)
            print(
                f"  round {r + 1} {label}: wall {got['wall_s']:.1f} s (start-up {got['startup_s']:.1f}, loop "
                f"{got['loop_s']:.1f}, finish {got['finish_s']:.1f}), holdout MCC {got['holdout_mcc']:.3f}, "
                f"load {got['load']:.2f}",
                flush=True,
            )
    print(f"\n{args.rounds} round(s), epochs {args.epochs or 'default'}; medians (min–max)\n")
    print("| tree | wall s | start-up s | loop s | finish s | × baseline wall |\n|---|---|---|---|---|---|")
    base = statistics.median(x["wall_s"] for x in results[labels[0]])
    for label in labels:
        rows = results[label]
        cells = []
        for key in ("wall_s", "startup_s", "loop_s", "finish_s"):
            values = [x[key] for x in rows]
            cells.append(f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})")
        ratio = statistics.median(x["wall_s"] for x in rows) / base
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": bc.machine(), "trees": labels, "results": results}, indent=2))


if __name__ == "__main__":
    main()
