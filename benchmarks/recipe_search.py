"""Recipe search for the default fine-tuning recipe of the embedded model (issue 11, round 2).

Every measurement goes through the workbench's own commands (`workbench sweep`, `workbench train
[--seeds]`), is read back from its run folders, and is saved as raw JSON lines in
benchmarks/recipe_search.jsonl; `write` then regenerates the "Round 2" section of
benchmarks/recipe_search.md from those lines alone (the earlier sections above it are kept as
they are).

    python benchmarks/recipe_search.py sweep  --study screen --trials 8 -- --epochs 3
    python benchmarks/recipe_search.py seeds  --name adopted --seeds 42,43,44 [-- TRAIN FLAGS]
    python benchmarks/recipe_search.py train  --name adopted-e1 -- --epochs 1
    python benchmarks/recipe_search.py write

Each measurement records the machine (CPU model, cores, AMX or not, torch), the date, the wall
seconds and the 1-minute load average at its start and end, sampled every 5 s while it runs (the
machine is shared: wall times under load are not clean timings). `sweep` enqueues today's
TrainConfig defaults as its first trial, so the screen has a baseline at the same epochs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
JSONL = Path(os.environ.get("RECIPE_JSONL", HERE / "recipe_search.jsonl"))
MD = Path(os.environ.get("RECIPE_MD", HERE / "recipe_search.md"))
SPACE = HERE / "recipe_space.json"
RUNS = Path(os.environ.get("RECIPE_RUNS", "/work/recipe-runs"))
SECTION = "\n## Round 2 (issue 11)"
SEARCHED = (
    "learning_rate",
    "layer_lr_decay",
    "warmup_ratio",
    "weight_decay",
    "batch_size",
    "dropout",
    "freeze_embeddings",
    "reinit_top_layers",
    "epochs",
)


# ---------------------------------------------------------------- machine and load


def machine() -> dict[str, Any]:
    import torch

    info = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "amx": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
    }


class LoadSampler:
    """The 1-minute load average every EVERY seconds, with its time, while a measurement runs."""

    def __init__(self, every: float = 5.0):
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            self.samples.append((time.time(), os.getloadavg()[0]))
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), os.getloadavg()[0]))

    def between(self, start: float, end: float) -> dict[str, Any]:
        inside = [v for t, v in self.samples if start <= t <= end] or [self.near(start)]
        return {
            "load_start": self.near(start),
            "load_end": self.near(end),
            "load_mean": round(statistics.fmean(inside), 2),
            "load_max": max(inside),
        }

    def near(self, moment: float) -> float:
        return min(self.samples, key=lambda s: abs(s[0] - moment))[1]


def cli(argv: list[str]) -> tuple[int, str]:
    """`workbench ARGV` in this process; its exit code and what it printed (also echoed)."""
    from workbench.cli import main

    buffer = io.StringIO()

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            buffer.write(text)
            import sys

            sys.__stdout__.write(text)
            sys.__stdout__.flush()
            return len(text)

    with contextlib.redirect_stdout(Tee()):
        code = main(argv)
    return int(code or 0), buffer.getvalue()


# ---------------------------------------------------------------- reading run folders


def read_run(run_dir: Path) -> dict[str, Any]:
    """The figures of one finished run folder: config, validation, in_domain_dev and holdout MCC."""
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    eval_path = run_dir / "eval.json"
    report = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else {}
    metrics = []
    if (run_dir / "metrics.jsonl").is_file():
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    val_by_epoch = [round(float(m["val_mcc"]), 4) for m in metrics if m.get("kind") == "epoch"]
    calibration = report.get("calibration", {})
    trial = run_dir / "trial.json"
    return {
        "run": run_dir.name,
        "config": {k: config.get(k) for k in SEARCHED} | {"seed": config.get("seed")},
        "trial": json.loads(trial.read_text(encoding="utf-8")) if trial.is_file() else None,
        "val_mcc_by_epoch": val_by_epoch,
        "val_mcc_best": max(val_by_epoch) if val_by_epoch else None,
        "val_mcc_calibrated": calibration.get("mcc_at_threshold"),
        "val_mcc_at_half": calibration.get("mcc_at_half"),
        "threshold": calibration.get("decision_threshold"),
        "in_domain_dev_mcc": report.get("in_domain_dev", {}).get("mcc"),
        "in_domain_dev_mcc_at_half": report.get("in_domain_dev", {}).get("mcc_at_half"),
        "holdout_mcc": report.get("holdout", {}).get("mcc"),
        "holdout_mcc_at_half": report.get("holdout", {}).get("mcc_at_half"),
    }


def append(row: dict[str, Any]) -> None:
    with JSONL.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def base_row(kind: str, name: str, argv: list[str]) -> dict[str, Any]:
    return {
        "round": 2,
        "measurement": kind,
        "name": name,
        "argv": argv,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# ---------------------------------------------------------------- measurements


def defaults_as_trial(space_file: Path, fixed: list[str]) -> dict[str, Any]:
    from workbench.core.base.config import TrainConfig

    names = json.loads(space_file.read_text(encoding="utf-8"))
    defaults = TrainConfig()
    return {f.name: getattr(defaults, f.name) for f in fields(TrainConfig) if f.name in names and f.name not in fixed}


def do_sweep(study: str, trials: int, train_flags: list[str], space_file: Path) -> None:
    import optuna

    from workbench.core.base.config import TrainConfig
    from workbench.core.search.space import load_space
    from workbench.core.search.storage import default_storage, open_storage
    from workbench.core.search.study import open_study
    from workbench.core.search.sweep import default_pruner

    RUNS.mkdir(parents=True, exist_ok=True)
    fixed = [flag[2:].replace("-", "_") for flag in train_flags if flag.startswith("--")]
    space = load_space(space_file, TrainConfig()).without(fixed)
    storage = default_storage(RUNS)
    made = open_study(study, open_storage(storage), space, TrainConfig(), pruner=default_pruner())
    if not made.trials:  # a fresh study: today's defaults first, as the screen's baseline
        made.enqueue_trial(defaults_as_trial(space_file, fixed))
    argv = [
        "sweep",
        "--study",
        study,
        "--trials",
        str(trials),
        "--runs",
        str(RUNS),
        "--space",
        str(space_file),
        *train_flags,
    ]
    row = base_row("sweep", study, argv)
    started = time.time()
    with LoadSampler() as load:
        code, _ = cli(argv)
    ended = time.time()
    _, shown = cli(["sweep", "show", "--study", study, "--runs", str(RUNS)])
    summary = optuna.load_study(study_name=study, storage=open_storage(storage, create=False))
    rows, previous_end = [], started
    for trial in sorted(summary.trials, key=lambda t: t.number):
        run_dir = RUNS / str(trial.user_attrs.get("run", f"{study}-t{trial.number}"))
        if not (run_dir / "config.json").is_file():
            continue
        end = trial.datetime_complete.timestamp() if trial.datetime_complete else ended
        begin = trial.datetime_start.timestamp() if trial.datetime_start else previous_end
        previous_end = end
        rows.append(
            {
                **read_run(run_dir),
                "number": trial.number,
                "state": trial.state.name.lower(),
                "value": trial.value,
                "params": trial.params,
                "wall_s": round(end - begin, 1),
                **load.between(begin, end),
            }
        )
    append(
        {
            **row,
            "exit": code,
            "wall_s": round(ended - started, 1),
            **load.between(started, ended),
            "show": shown,
            "trials": rows,
        }
    )
    write()


def do_train(kind: str, name: str, seeds: str | None, train_flags: list[str]) -> None:
    argv = ["train", "--name", name, "--runs", str(RUNS), *(["--seeds", seeds] if seeds else []), *train_flags]
    row = base_row(kind, name, argv)
    started = time.time()
    with LoadSampler() as load:
        code, _ = cli(argv)
    ended = time.time()
    names = [f"{name}-s{s.strip()}" for s in seeds.split(",")] if seeds else [name]
    runs = []
    for run in names:
        run_dir = RUNS / run
        if (run_dir / "config.json").is_file():  # a run stopped before its final eval is recorded without one
            first = min(p.stat().st_mtime for p in run_dir.iterdir())
            end = (run_dir / "eval.json").stat().st_mtime if (run_dir / "eval.json").is_file() else ended
            state = "complete" if (run_dir / "eval.json").is_file() else "stopped"
            runs.append(
                {**read_run(run_dir), "state": state, "wall_s_files": round(end - first, 1), **load.between(first, end)}
            )
    append({**row, "exit": code, "wall_s": round(ended - started, 1), **load.between(started, ended), "runs": runs})
    write()


# ---------------------------------------------------------------- the .md section


def _f(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _cfg(config: dict[str, Any]) -> str:
    short = {
        "learning_rate": "lr",
        "layer_lr_decay": "llrd",
        "warmup_ratio": "warm",
        "weight_decay": "wd",
        "batch_size": "bs",
        "dropout": "drop",
        "freeze_embeddings": "freeze",
        "reinit_top_layers": "reinit",
        "epochs": "ep",
    }
    out = []
    for key, label in short.items():
        value = config.get(key)
        if isinstance(value, bool):
            out.append(f"{label} {'on' if value else 'off'}")
        elif isinstance(value, float):
            out.append(f"{label} {value:.3g}")
        elif value is not None:
            out.append(f"{label} {value}")
    return ", ".join(out)


def _machine(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu']}, {m['cores']} cores, {'AMX' if m['amx'] else 'no AMX'}"
        f"{' (AVX-512 BF16)' if m.get('avx512_bf16') else ''}"
        f", torch {m['torch']} on {m['torch_threads']} thread(s)"
    )


def _load(r: dict[str, Any]) -> str:
    return f"{r['load_start']:.2f} / {r['load_end']:.2f} (mean {r['load_mean']:.2f})"


def _median(values: list[Any]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "—"
    return f"**{statistics.median(got):.3f}** ({min(got):.3f}–{max(got):.3f})"


def _complete(t: dict[str, Any]) -> bool:
    """A run that finished all its epochs (a run stopped for time may still have been scored)."""
    return t.get("state", "complete") == "complete" and len(t["val_mcc_by_epoch"]) >= int(t["config"]["epochs"])


def by_recipe(rows: list[dict[str, Any]]) -> list[str]:
    """Medians over every complete full run of one recipe, across `seeds` measurements (a seed
    may have been measured on its own when the group ran out of time)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["measurement"] != "seeds":
            continue
        for t in r.get("runs", []):
            if _complete(t):
                key = _cfg({k: v for k, v in t["config"].items() if k != "seed"})
                groups.setdefault(key, []).append(t)
    if not groups:
        return []
    out = [
        "### Seeds by recipe (all `seeds` measurements above)",
        "",
        "| recipe | runs (seeds) | val best | in_domain_dev cal. | in_domain_dev 0.5 | holdout cal. | holdout 0.5 "
        "| wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, runs in groups.items():
        out.append(
            f"| {key} | {', '.join(t['run'] for t in runs)} ({len(runs)}) | "
            f"{_median([t['val_mcc_best'] for t in runs])} | "
            f"{_median([t['in_domain_dev_mcc'] for t in runs])} | "
            f"{_median([t['in_domain_dev_mcc_at_half'] for t in runs])} | "
            f"{_median([t['holdout_mcc'] for t in runs])} | "
            f"{_median([t['holdout_mcc_at_half'] for t in runs])} | "
            f"{statistics.median(t['wall_s_files'] for t in runs):.0f} |"
        )
    return [*out, ""]


def goals(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 11's goals against today's TrainConfig defaults (full runs: every complete `seeds` run
    of that recipe; 1-epoch: `train` runs of it with epochs 1)."""
    from workbench.core.base.config import TrainConfig

    today = {k: v for k, v in TrainConfig().to_dict().items() if k in SEARCHED}
    full, short = [], []
    for r in rows:
        for t in r.get("runs", []):
            recipe = {k: v for k, v in t["config"].items() if k in SEARCHED}
            if not _complete(t) or recipe | {"epochs": today["epochs"]} != today:
                continue
            if r["measurement"] == "seeds" and recipe["epochs"] == today["epochs"]:
                full.append(t)
            elif r["measurement"] == "train" and recipe["epochs"] == 1:
                short.append(t)
    if not full and not short:
        return []

    def line(goal: str, target: float, values: list[Any], what: str, higher: bool = True) -> str:
        got = [v for v in values if v is not None]
        if not got:
            return f"| {goal} | {target:g} | — | not measured |"
        value = statistics.median(got)
        gap = value - target if higher else target - value
        verdict = f"met by {gap:.3f}" if gap >= 0 else f"missed by {-gap:.3f}"
        if not higher:
            verdict = f"met by {gap:.0f} s" if gap >= 0 else f"missed by {-gap:.0f} s"
        return f"| {goal} | {target:g} | {value:.3f} ({what}, n={len(got)}) | {verdict} |".replace(
            f"{value:.3f} ({what}", f"{value:.0f} ({what}" if not higher else f"{value:.3f} ({what}"
        )

    return [
        "### Goals (issue 11), today's defaults on this machine",
        "",
        "| goal | target | measured | verdict |",
        "|---|---|---|---|",
        line("holdout MCC, median of seeds (calibrated)", 0.30, [t["holdout_mcc"] for t in full], "median"),
        line("holdout MCC, median of seeds (at 0.5)", 0.30, [t["holdout_mcc_at_half"] for t in full], "median"),
        line("in_domain_dev MCC, median (calibrated)", 0.40, [t["in_domain_dev_mcc"] for t in full], "median"),
        line("in_domain_dev MCC, median (at 0.5)", 0.40, [t["in_domain_dev_mcc_at_half"] for t in full], "median"),
        line("1-epoch holdout MCC (calibrated)", 0.15, [t["holdout_mcc"] for t in short], "median"),
        line("1-epoch holdout MCC (at 0.5)", 0.15, [t["holdout_mcc_at_half"] for t in short], "median"),
        line(
            "default run wall s (2 cores, no AMX; under load)",
            300,
            [t["wall_s_files"] for t in full],
            f"median s, 1 torch thread, 1-min load mean "
            f"{statistics.median(t['load_mean'] for t in full) if full else 0:.1f}",
            higher=False,
        ),
        "",
    ]


def write() -> None:
    rows = [json.loads(line) for line in JSONL.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("round") == 2]
    head = (
        "| run | recipe | state | val MCC by epoch | val best (cal.) | in_domain_dev cal. / 0.5 "
        "| holdout cal. / 0.5 | wall s | load start / end (mean) |"
    )
    rule = "|---|---|---|---|---|---|---|---|---|"
    out = [
        SECTION.strip(),
        "",
        "Written by `benchmarks/recipe_search.py write` from the JSON lines of `recipe_search.jsonl` (round 2).",
        "Every run through `workbench sweep` / `workbench train`. MCC 'cal.' = at the decision threshold",
        "chosen on validation and folded into the saved model; '0.5' = at p(acceptable) >= 0.5. 'val best' is",
        "the best epoch's validation MCC at 0.5 (what picks the epoch and what the sweep maximises); the",
        "calibrated validation MCC is optimistic, its threshold being chosen on the same sentences.",
        "Load = 1-minute load average at start / end (mean of 5-s samples) on a 2-core machine shared with",
        "other agents: wall seconds under load are not clean timings.",
        "",
    ]
    for r in rows:
        out += [
            f"### {r['measurement']}: {r['name']} ({r['date']})",
            "",
            f"Machine: {_machine(r['machine'])}. Command: `workbench {' '.join(r['argv'])}` "
            f"(exit {r['exit']}), wall {r['wall_s']:.0f} s, load {_load(r)}.",
            "",
        ]
        runs = r.get("trials") or r.get("runs") or []
        out += [head, rule]
        for t in runs:
            state = t.get("state", "complete")
            label = t["run"] + (" (today's defaults)" if t.get("number") == 0 and r["measurement"] == "sweep" else "")
            wall = t.get("wall_s", t.get("wall_s_files"))
            out.append(
                f"| {label} | {_cfg(t['config'])} | {state} | "
                f"{' '.join(f'{v:.3f}' for v in t['val_mcc_by_epoch'])} | "
                f"{_f(t['val_mcc_best'])} ({_f(t['val_mcc_calibrated'])}) | "
                f"{_f(t['in_domain_dev_mcc'])} / {_f(t['in_domain_dev_mcc_at_half'])} | "
                f"{_f(t['holdout_mcc'])} / {_f(t['holdout_mcc_at_half'])} | {_f(wall, 0)} | {_load(t)} |"
            )
        runs_done = [t for t in runs if _complete(t)]
        if len(runs_done) > 1 and r["measurement"] == "seeds":
            runs = runs_done
            out += [
                "",
                "| over seeds | val best | in_domain_dev cal. | in_domain_dev 0.5 | holdout cal. "
                "| holdout 0.5 | wall s |",
                "|---|---|---|---|---|---|---|",
                f"| median (min–max) of {len(runs)} | {_median([t['val_mcc_best'] for t in runs])} | "
                f"{_median([t['in_domain_dev_mcc'] for t in runs])} | "
                f"{_median([t['in_domain_dev_mcc_at_half'] for t in runs])} | "
                f"{_median([t['holdout_mcc'] for t in runs])} | "
                f"{_median([t['holdout_mcc_at_half'] for t in runs])} | "
                f"{statistics.median(t['wall_s_files'] for t in runs):.0f} |",
            ]
        if r.get("show"):
            out += ["", "`workbench sweep show` right after the sweep:", "", "```", r["show"].rstrip(), "```"]
        out.append("")
    out += by_recipe(rows)
    out += goals(rows)
    text = MD.read_text(encoding="utf-8") if MD.exists() else ""
    kept = text.split(SECTION, 1)[0].rstrip("\n")
    conclusions = ""
    marker = "\n### Conclusions (round 2)"
    if marker in text:  # hand-written conclusions below the generated tables survive regeneration
        conclusions = marker + text.split(marker, 1)[1]
    MD.write_text(kept + "\n" + SECTION + "\n" + "\n".join(out[1:]).rstrip("\n") + "\n" + conclusions, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sweep = sub.add_parser("sweep", help="run `workbench sweep` (today's defaults enqueued first) and record it")
    sweep.add_argument("--study", default="screen")
    sweep.add_argument("--trials", type=int, default=8)
    sweep.add_argument("--space", type=Path, default=SPACE)
    for name in ("seeds", "train"):
        p = sub.add_parser(name, help=f"run `workbench train{' --seeds' if name == 'seeds' else ''}` and record it")
        p.add_argument("--name", required=True)
        if name == "seeds":
            p.add_argument("--seeds", default="42,43,44")
    sub.add_parser("write", help="regenerate the round-2 section of recipe_search.md from the JSON lines")
    args, rest = parser.parse_known_args()
    rest = [a for a in rest if a != "--"]
    if args.what == "sweep":
        do_sweep(args.study, args.trials, rest, args.space)
    elif args.what == "seeds":
        do_train("seeds", args.name, args.seeds, rest)
    elif args.what == "train":
        do_train("train", args.name, None, rest)
    else:
        write()


if __name__ == "__main__":
    main()
