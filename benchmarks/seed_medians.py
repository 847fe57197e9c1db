"""Recipes over seeds, side by side: the medians a recipe choice may use (validation) and the ones it reports.

    python benchmarks/seed_medians.py NAME=RUN,RUN,RUN [NAME=RUN,...] [--runs DIR] [--out FILE]

Each RUN is a finished run folder (a name under --runs, or a path). Read from the run itself: the seed from
config.json; the best epoch's validation MCC at p >= 0.5 (what picks the epoch and what a sweep maximises)
from metrics.jsonl's end event; in_domain_dev and holdout MCC at the shipped (calibrated) decision, and at
0.5, from eval.json; the wall seconds from the first to the last event. Prints one markdown row per run and
one per recipe with the medians (min-max); the figures are the runs', nothing is recomputed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path


def run_row(folder: Path) -> dict[str, float]:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    events = [
        json.loads(line) for line in (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    ends = [e for e in events if e.get("kind") == "end"]
    if not ends or ends[-1].get("status") != "done":
        raise SystemExit(f"{folder}: not a finished run (no 'done' end event in metrics.jsonl)")
    recorded = json.loads((folder / "eval.json").read_text(encoding="utf-8"))
    times = [datetime.fromisoformat(e["time"]) for e in events if "time" in e]
    return {
        "seed": config["seed"],
        "val": ends[-1]["best_val_mcc"],
        "dev": recorded["in_domain_dev"]["mcc"],
        "dev_half": recorded["in_domain_dev"]["mcc_at_half"],
        "holdout": recorded["holdout"]["mcc"],
        "holdout_half": recorded["holdout"]["mcc_at_half"],
        "wall": (max(times) - min(times)).total_seconds(),
    }


def spread(values: list[float]) -> str:
    return f"**{statistics.median(values):.3f}** ({min(values):.3f}–{max(values):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", help="NAME=RUN,RUN,...")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    lines = [
        "| recipe | run | seed | validation (best epoch, at 0.5) | in_domain_dev (shipped / 0.5) "
        "| holdout (shipped / 0.5) | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = [
        "| recipe | seeds | validation median | in_domain_dev median | holdout median |",
        "|---|---|---|---|---|",
    ]
    for recipe in args.recipes:
        name, _, runs = recipe.partition("=")
        rows = []
        for run in runs.split(","):
            folder = Path(run) if Path(run).is_dir() else Path(args.runs) / run
            row = run_row(folder)
            rows.append(row)
            lines.append(
                f"| {name} | {folder.name} | {row['seed']} | {row['val']:.3f} | {row['dev']:.3f} / "
                f"{row['dev_half']:.3f} | {row['holdout']:.3f} / {row['holdout_half']:.3f} | "
                f"{row['wall']:.0f} |"
            )
        summary.append(
            f"| {name} | {', '.join(str(r['seed']) for r in rows)} | {spread([r['val'] for r in rows])} "
            f"| {spread([r['dev'] for r in rows])} | {spread([r['holdout'] for r in rows])} |"
        )
    text = "\n".join(lines + [""] + summary) + "\n"
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
