"""Does acting on the map or on cleanlab's label issues train a better model? The default recipe against four
choices of training data, over seeds, each an ordinary run made by the CLI:

    python benchmarks/label_experiment.py --runs DIR [--seeds 42,43,44] [--arms default,drop,flip,...]
    python benchmarks/label_experiment.py --runs DIR --table [--out FILE]

Arms (every run: the default recipe, --seed S --head-seed 42, as the issue's first probe):
  default     the whole training split
  drop        cleanlab's label issues (`workbench data issues`, with default-s42's map beside) dropped
  flip        the same issues' labels flipped
  ambiguous   only the ambiguous third of default-s42's map (`--map default-s42 --regions ambiguous`)
  nohard      default-s42's hard-to-learn sentences dropped (`--regions easy,ambiguous`)

Order: default-s42 first (its map serves the others), then `data issues`, then every arm at the first seed,
then the next seeds, so that a stopped experiment has whole seeds. Resumable: a finished run is skipped, a
stopped one resumed (`train --resume`), and `data issues` continues its folds. Ctrl-C stops the training
under way with a checkpoint. `--table` prints the medians (benchmarks/seed_medians.py) of the finished runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ARMS = ("default", "drop", "flip", "ambiguous", "nohard")
MAP_RUN = "default-s42"
ISSUES = "label-issues"


def workbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", *args]


def status(run: Path) -> str:
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return "new"
    ends = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if '"end"' in line]
    return ends[-1]["status"] if ends else "unfinished"


def overrides_file(runs: Path, decision: str) -> Path:
    """An overrides file with DECISION for every label issue of the fold group (written once)."""
    from workbench.core.data.overrides import Override, write_overrides
    from workbench.core.explore.label_issues import read_label_issues

    path = runs / f"issues-{decision}.tsv"
    if not path.is_file():
        issues = read_label_issues(runs / ISSUES)
        note = "cleanlab label issue (benchmarks/label_experiment.py)"
        write_overrides(path, [Override(i.line, i.sentence, i.label, decision, note) for i in issues])
    return path


def arm_args(runs: Path, arm: str) -> list[str]:
    if arm == "default":
        return []
    if arm in ("drop", "flip"):
        return ["--overrides", str(overrides_file(runs, arm))]
    if arm == "ambiguous":
        return ["--map", MAP_RUN, "--regions", "ambiguous"]
    if arm == "nohard":
        return ["--map", MAP_RUN, "--regions", "easy,ambiguous"]
    raise SystemExit(f"unknown arm {arm!r}; the arms are {', '.join(ARMS)}")


def run(command: list[str]) -> None:
    print("$", " ".join(command[2:]), flush=True)
    started = time.monotonic()
    child = subprocess.Popen(command)
    try:
        code = child.wait()
    except KeyboardInterrupt:  # the child had the same Ctrl-C: let it stop at its next batch, with a checkpoint
        code = child.wait()  # (subprocess.call would kill it, and the run would lose its steps since the last one)
        print(f"# interrupted: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        raise SystemExit(130) from None
    print(f"# exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    if code:
        raise SystemExit(code)


def train(runs: Path, arm: str, seed: int) -> None:
    name = f"{arm}-s{seed}"
    state = status(runs / name)
    if state == "done":
        return
    if state == "new":
        run(
            workbench(
                "train",
                "--runs",
                str(runs),
                "--name",
                name,
                "--seed",
                str(seed),
                "--head-seed",
                "42",
                *arm_args(runs, arm),
            )
        )
    else:
        run(workbench("train", "--runs", str(runs), "--resume", name))


def table(runs: Path, arms: list[str], seeds: list[int], out: Path | None) -> None:
    recipes = []
    for arm in arms:
        done = [f"{arm}-s{seed}" for seed in seeds if status(runs / f"{arm}-s{seed}") == "done"]
        if done:
            recipes.append(f"{arm}=" + ",".join(done))
    command = [sys.executable, str(HERE / "seed_medians.py"), *recipes, "--runs", str(runs)]
    if out is not None:
        command += ["--out", str(out)]
    subprocess.check_call(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--table", action="store_true", help="only print the medians of the finished runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = args.arms.split(",")
    args.runs.mkdir(parents=True, exist_ok=True)
    if args.table:
        table(args.runs, arms, seeds, args.out)
        return
    train(args.runs, "default", 42)
    issues = args.runs / ISSUES / "label_issues.tsv"
    if not issues.is_file() and {"drop", "flip"} & set(arms):
        run(workbench("data", "issues", "--runs", str(args.runs), "--folds", str(args.folds), "--run", MAP_RUN))
    for seed in seeds:
        for arm in arms:
            train(args.runs, arm, seed)
    table(args.runs, arms, seeds, args.out)


if __name__ == "__main__":
    main()
