"""Training throughput, side by side in one interleaved run: the workbench against the seed recipe and HF Trainer.

    python benchmarks/throughput.py                      # 3 repeats of every recipe, interleaved (~25 min, 2 cores)
    python benchmarks/throughput.py --repeats 5 --threads 1
    python benchmarks/throughput.py --quick              # 512 sentences, 1 repeat: checks that it all works
    python benchmarks/throughput.py --only workbench,trainer_best_bf16_alloc,trainer_best_bf16

Recipes (same model, same sentences, batch 32), each run in a fresh process of its own per repeat:
  workbench               the workbench's own train() with its defaults (bf16 autocast where the CPU has it,
                          the word-embedding table frozen); checked: fails if the table moved
  workbench_trained       the same with the table trained (--no-freeze-embeddings), the default before round 2
  seed                    the seed notebook: every sentence padded to 128, plain PyTorch loop, AdamW, fp32
  trainer_default         transformers.Trainer as run_glue.py runs it by default (pad to 128), fp32
  trainer_best_fp32       Trainer with dynamic padding, group_by_length, its default fused AdamW, fp32
  trainer_best_bf16       the same with bf16 mixed precision
  <peer>_alloc            a peer with the workbench's allocator settings: transparent huge pages for large
                          tensors (THP_MEM_ALLOC_ENABLE=1) and glibc keeping freed blocks (keep_freed_memory).
                          These are the headline peers; the plain ones (torch's defaults) are shown beside them.
  peak                    the matmul peak at the model's shapes (matmul_peak.py), fp32 and bf16, at the same
                          thread count, in its own process like the others, for the MFU

Interleaving: every round runs each recipe once, in an order rotated by one each round (A B C, B C A,
C A B, ...), so no recipe always runs first and slow spells of machine load spread over all of them.
The table gives each recipe's median over its repeats with the spread (min-max), and the workbench's
lead over each peer as the median of its per-round ratios (workbench / peer, same round).

Steady state: sentences/s from the end of the warm-up steps to the end of the last step (the
workbench's per-epoch validation is not inside that window). Pad-to-128 recipes run a fixed number
of steps (they are ~15x slower, and every batch costs the same); dynamic-padding recipes run a whole
epoch, since their batch lengths vary. MFU = training FLOPs of the real tokens (6 x matmul parameters
+ attention) / the matmul peak in the precision the recipe computes in.
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

PEERS = ["seed", "trainer_default", "trainer_best_fp32", "trainer_best_bf16"]
RECIPES = ["workbench", "workbench_trained"] + [p + s for p in PEERS for s in ("_alloc", "")] + ["peak"]
DEFAULT = [
    "workbench",
    "workbench_trained",
    "seed_alloc",
    "seed",
    "trainer_best_fp32_alloc",
    "trainer_best_fp32",
    "trainer_best_bf16_alloc",
    "trainer_best_bf16",
    "peak",
]
FIXED_STEP_RECIPES = {"seed", "trainer_default"}
LABELS = {
    "workbench": "workbench (defaults)",
    "workbench_trained": "workbench, word-embedding table trained",
    "seed": "seed recipe (pad 128, plain loop, fp32)",
    "trainer_default": "Trainer, run_glue.py default (pad 128)",
    "trainer_best_fp32": "Trainer best, fp32 (dynamic padding, length grouping)",
    "trainer_best_bf16": "Trainer best, bf16 (dynamic padding, length grouping)",
}


def tuned(recipe: str) -> bool:
    """Whether RECIPE runs with the workbench's allocator and huge-page settings."""
    return recipe.startswith("workbench") or recipe.endswith("_alloc")


def base_name(recipe: str) -> str:
    return recipe.removesuffix("_alloc")


def compute_dtype(recipe: str) -> str:
    if recipe.startswith("workbench"):
        from workbench.core.base.hardware import resolve_precision

        return "bf16" if resolve_precision("auto", "cpu") == "bf16" else "fp32"
    return "bf16" if "bf16" in recipe else "fp32"


def check_frozen(run_dir: Path, model_id: str) -> None:
    """Fail unless the run's saved word-embedding table equals the pretrained one."""
    import torch

    from workbench.core.model.loading import load_model

    trained = load_model(str(run_dir / "model")).get_input_embeddings().weight
    pretrained = load_model(model_id).get_input_embeddings().weight
    if not torch.equal(trained, pretrained):
        raise SystemExit(
            "workbench: the word-embedding table moved: train() does not honour "
            "TrainConfig.freeze_embeddings (see workbench/core/speed.py for the hook)"
        )


def measure(recipe: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one recipe in this process and return its figures."""
    if tuned(recipe):
        import workbench  # noqa: F401  # before torch, as the CLI and the TUI do

    import torch

    if tuned(recipe) and not recipe.startswith("workbench"):
        from workbench.core.base.hardware import keep_freed_memory  # train() calls it itself for the workbench

        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = bc.loadavg()
    if recipe == "peak":
        from matmul_peak import measure_peak

        peak = measure_peak(tokens=int(bc.BATCH * 12))
        return {
            "recipe": recipe,
            "peak": peak,
            "load_before": load_before,
            "load_after": bc.loadavg(),
            "threads": torch.get_num_threads(),
        }
    model_id = bc.model_name(args.model)
    limit = args.limit
    name = base_name(recipe)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if name in FIXED_STEP_RECIPES:
            steps = args.warmup + args.steps
            if name == "seed":
                marks, model = bc.run_seed(model_id, limit, 1, steps)
            else:
                marks, model = bc.run_trainer(model_id, limit, 1, steps, best=False, bf16=False, out_dir=Path(tmp))
        elif name.startswith("workbench"):
            overrides = {"freeze_embeddings": False} if name == "workbench_trained" else {}
            marks, _ = bc.run_workbench(model_id, limit, 1, Path(tmp) / "run", overrides)
            if name == "workbench":
                check_frozen(Path(tmp) / "run", model_id)
            from workbench.core.model.loading import load_model

            model = load_model(model_id)
        else:
            marks, model = bc.run_trainer(model_id, limit, 1, 0, best=True, bf16="bf16" in name, out_dir=Path(tmp))
    figures: dict[str, Any] = dict(marks.steady(args.warmup))
    figures.update(
        recipe=recipe,
        flops_per_token=bc.train_flops_per_token(model, figures["mean_real_len"]),
        parameters=sum(p.numel() for p in model.parameters()),
        matmul_parameters=bc.matmul_parameters(model),
        peak_rss_mb=bc.peak_rss_mb(),
        load_before=load_before,
        load_after=bc.loadavg(),
        threads=torch.get_num_threads(),
        dtype=compute_dtype(recipe),
        thp=os.environ.get("THP_MEM_ALLOC_ENABLE", ""),
    )
    return figures


def run_child(recipe: str, base: list[str]) -> dict[str, Any]:
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1" if tuned(recipe) else "0"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", recipe, *base], capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stdout[-1500:] + proc.stderr[-2500:]).strip()
        return {
            "recipe": recipe,
            "failed": f"exit {proc.returncode}: {tail.splitlines()[-1] if tail else ''}",
            "log_tail": tail,
            "wall_s": time.perf_counter() - started,
        }
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    result["wall_s"] = time.perf_counter() - started
    return result


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """'median (min-max)', or the one value."""
    if not values:
        return "-"
    median = fmt.format(statistics.median(values))
    return median if len(values) == 1 else f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def summarise(rounds: list[dict[str, dict[str, Any]]], recipes: list[str]) -> dict[str, Any]:
    """Medians, spreads, paired ratios to the workbench and MFU, from every round's results."""
    ok = [{k: v for k, v in r.items() if "failed" not in v} for r in rounds]
    peaks = [r["peak"]["peak"] for r in ok if "peak" in r]
    peak = {k: statistics.median(p[k] for p in peaks) for k in ("fp32", "bf16") if peaks and all(k in p for p in peaks)}
    out: dict[str, Any] = {"peak": peak, "peak_runs": peaks, "recipes": {}}
    for recipe in recipes:
        if recipe == "peak":
            continue
        runs = [r[recipe] for r in ok if recipe in r]
        if not runs:
            out["recipes"][recipe] = {"runs": 0}
            continue
        rates = [x["sentences_per_s"] for x in runs]
        gflops = [x["real_tokens_per_s"] * x["flops_per_token"] / 1e9 for x in runs]
        dtype = runs[0]["dtype"]
        entry: dict[str, Any] = {
            "runs": len(runs),
            "sentences_per_s": rates,
            "sentences_per_cpu_s": [x["sentences_per_cpu_s"] for x in runs],
            "model_gflops": gflops,
            "dtype": dtype,
            "padding_share": statistics.median(x["padding_share"] for x in runs),
            "peak_rss_mb": max(x["peak_rss_mb"] for x in runs),
            "steps": runs[0]["steps"],
            "mfu": [g / peak[dtype] for g in gflops] if dtype in peak else None,
            "loads": [x["load_before"] for x in runs] + [x["load_after"] for x in runs],
        }
        if recipe != "workbench":
            paired = [
                r["workbench"]["sentences_per_s"] / r[recipe]["sentences_per_s"]
                for r in ok
                if recipe in r and "workbench" in r
            ]
            entry["workbench_ratio"] = paired
        out["recipes"][recipe] = entry
    return out


def markdown(summary: dict[str, Any], header: dict[str, Any], recipes: list[str]) -> str:
    lines = [
        f"Machine: {header['cpu']} ({header['cores']} cores, {header['isa']}, "
        f"{'AMX' if header['amx'] else 'no AMX'}), torch {header['torch']}, {header['threads']} threads; "
        f"{header['date']}; 1-minute load average {header['load_min']:.1f}–{header['load_max']:.1f} over the "
        f"runs; {header['repeats']} repeat(s) each, interleaved, order rotated every round"
        + ("; QUICK (512 sentences): a check, not figures" if header["quick"] else "")
        + ".",
        "",
        "| recipe | sentences/s, median (min–max) | per CPU-s | untuned peer, sentences/s | workbench × "
        "(paired median, min–max) | model GFLOP/s | MFU | pad share | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    table = summary["recipes"]
    shown = [r for r in recipes if r != "peak" and (tuned(r) or f"{r}_alloc" not in recipes)]
    for recipe in shown:
        e = table.get(recipe, {"runs": 0})
        untuned = table.get(base_name(recipe)) if recipe.endswith("_alloc") else None
        label = LABELS.get(base_name(recipe), recipe)
        if recipe.endswith("_alloc"):
            label += ", workbench's allocator settings"
        if not e["runs"]:
            lines.append(f"| {label} | failed | | | | | | | |")
            continue
        ratio = spread(e.get("workbench_ratio", []), "{:.2f}") + "×" if recipe != "workbench" else "1.00"
        mfu = spread([m * 100 for m in e["mfu"]], "{:.1f}") + " %" if e["mfu"] else "–"
        lines.append(
            f"| {label} | {spread(e['sentences_per_s'])} | {spread(e['sentences_per_cpu_s'])} | "
            f"{spread(untuned['sentences_per_s']) if untuned and untuned['runs'] else '–'} | {ratio} | "
            f"{spread(e['model_gflops'])} ({e['dtype']}) | {mfu} | {e['padding_share']:.0%} | "
            f"{e['peak_rss_mb']:.0f} MB |"
        )
    peak = summary["peak"]
    if peak:
        lines += [
            "",
            "Matmul peak at the model's shapes, same thread count, median of the rounds: "
            + ", ".join(f"{k} {spread([p[k] for p in summary['peak_runs']])} GFLOP/s" for k in peak),
        ]
    untuned_rows = [r for r in recipes if not tuned(r) and f"{r}_alloc" in recipes]
    if untuned_rows:
        lines += [
            "",
            "Untuned peers (torch's defaults: no huge pages, glibc returns freed memory), workbench × "
            "paired: "
            + "; ".join(
                f"{r} {spread(table[r].get('workbench_ratio', []), '{:.2f}')}×"
                for r in untuned_rows
                if table.get(r, {}).get("runs")
            ),
        ]
    return "\n".join(lines)


TRAINER_GOAL = 1.5  # issue 33 (round 3); rounds 1-2 asked for 1.3


def goals(summary: dict[str, Any]) -> list[str]:
    """The issue's goals against the tuned peers."""
    table = summary["recipes"]
    out = []
    best = [r for r in ("trainer_best_bf16_alloc", "trainer_best_fp32_alloc") if table.get(r, {}).get("runs")]
    if best and table.get("workbench", {}).get("runs"):
        fastest = max(best, key=lambda r: statistics.median(table[r]["sentences_per_s"]))
        ratio = statistics.median(table[fastest]["workbench_ratio"])
        out.append(
            f"goal >= {TRAINER_GOAL}x Trainer at its best ({fastest}, equal allocator settings): {ratio:.2f}x -> "
            f"{'met' if ratio >= TRAINER_GOAL else f'missed by {TRAINER_GOAL - ratio:.2f}'}"
        )
    if table.get("seed_alloc", {}).get("runs") and table.get("workbench", {}).get("runs"):
        ratio = statistics.median(table["seed_alloc"]["workbench_ratio"])
        out.append(
            f"goal >= 20x the seed recipe (equal allocator settings): {ratio:.1f}x -> "
            f"{'met' if ratio >= 20 else f'missed by {20 - ratio:.1f}'}"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(DEFAULT), help="comma-separated recipes, in round order")
    parser.add_argument("--repeats", type=int, default=3, help="rounds: every recipe runs once a round")
    parser.add_argument("--model", default=None, help="model id or folder (default: the embedded model)")
    parser.add_argument("--limit", type=int, default=0, help="first N training sentences (0 = all 7,695)")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    parser.add_argument("--steps", type=int, default=40, help="timed steps of the pad-to-128 recipes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--quick", action="store_true", help="512 sentences, 3 warm-up and 8 timed steps, 1 repeat")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="raw results (default: benchmarks/results/throughput-<date>.json; --quick: a temp file)",
    )
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.limit, args.warmup, args.steps = args.limit or 512, 3, 8
        if "--repeats" not in sys.argv:
            args.repeats = 1
    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args)), flush=True)
        return

    recipes = args.only.split(",")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown or len(set(recipes)) != len(recipes):
        raise SystemExit(f"unknown or repeated recipes {unknown or recipes}; choose from {', '.join(RECIPES)}")
    if "workbench" not in recipes:
        raise SystemExit("the workbench is the reference: include 'workbench'")
    base = [
        "--limit",
        str(args.limit),
        "--warmup",
        str(args.warmup),
        "--steps",
        str(args.steps),
        "--threads",
        str(args.threads),
    ] + (["--model", args.model] if args.model else [])
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    print(
        f"machine: {bc.machine()}; amx: {'yes' if bc.has_amx() else 'no'}; load average {bc.loadavg():.2f}; "
        f"{args.repeats} round(s) of {', '.join(recipes)}",
        flush=True,
    )
    rounds: list[dict[str, dict[str, Any]]] = []
    for r in range(args.repeats):
        order = recipes[r % len(recipes) :] + recipes[: r % len(recipes)]
        results: dict[str, dict[str, Any]] = {}
        for recipe in order:
            x = run_child(recipe, base)
            x["round"] = r + 1
            results[recipe] = x
            if "failed" in x:
                print(f"  round {r + 1} {recipe:<24} FAILED {x['failed']}", flush=True)
            elif recipe == "peak":
                print(
                    f"  round {r + 1} {recipe:<24} "
                    + ", ".join(f"{k} {v:.0f}" for k, v in x["peak"].items() if "_" not in k)
                    + " GFLOP/s",
                    flush=True,
                )
            else:
                print(
                    f"  round {r + 1} {recipe:<24} {x['sentences_per_s']:7.1f} sentences/s, "
                    f"{x['sentences_per_cpu_s']:6.1f} per CPU-second ({x['steps']} steps, {x['seconds']:.1f} s, "
                    f"load {x['load_before']:.2f}->{x['load_after']:.2f})",
                    flush=True,
                )
        rounds.append(results)

    summary = summarise(rounds, recipes)
    loads = [v for r in rounds for x in r.values() for k, v in x.items() if k in ("load_before", "load_after")]
    threads = next((x["threads"] for r in rounds for x in r.values() if "threads" in x), torch.get_num_threads())
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    header = {
        "cpu": bc.cpu_model(),
        "cores": os.cpu_count(),
        "amx": bc.has_amx(),
        "isa": "AVX-512 BF16" if "avx512_bf16" in flags else ("AVX-512" if "avx512f" in flags else "no AVX-512"),
        "torch": torch.__version__,
        "threads": threads,
        "date": started,
        "repeats": args.repeats,
        "load_min": min(loads, default=float("nan")),
        "load_max": max(loads, default=float("nan")),
        "quick": args.quick,
        "limit": args.limit,
        "recipes": recipes,
    }
    table = markdown(summary, header, recipes)
    print("\n" + table)
    wb = summary["recipes"].get("workbench", {})
    if wb.get("runs"):
        first = next(r["workbench"] for r in rounds if "workbench" in r and "failed" not in r["workbench"])
        print(
            f"\nModel FLOPs per real token: 6 x {first['matmul_parameters'] / 1e6:.1f} M matmul parameters "
            f"+ attention (of {first['parameters'] / 1e6:.1f} M parameters: embedding lookups do no multiply-adds)."
        )
    for line in goals(summary):
        print(("(quick check, not a figure) " if args.quick else "") + line)
    failed = [f"round {x['round']} {x['recipe']}" for r in rounds for x in r.values() if "failed" in x]
    if failed:
        print("FAILED: " + ", ".join(failed))
    path = args.json
    if path is None:
        path = (
            Path(tempfile.gettempdir()) if args.quick else HERE / "results"
        ) / f"throughput-{time.strftime('%Y%m%d-%H%M')}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps({"header": header, "summary": summary, "rounds": rounds, "table": table}, indent=2))
    print(f"raw results: {path}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
