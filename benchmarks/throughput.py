"""Training throughput, side by side in one run: the workbench against the seed recipe and HF Trainer.

    python benchmarks/throughput.py                 # full: whole epoch for 1 and 4, 40 timed steps for 2 and 3
    python benchmarks/throughput.py --quick         # about a minute: 512 sentences, 8 timed steps
    python benchmarks/throughput.py --only workbench,trainer_best_bf16

Recipes (same model, same sentences, batch 32), each in its own fresh process:
  workbench          the workbench's training path with its defaults (bf16 autocast where the CPU has it)
  seed               the seed notebook: every sentence padded to 128, plain PyTorch loop, AdamW, fp32
  trainer_default    transformers.Trainer as run_glue.py runs it by default (pad to max length 128), fp32
  trainer_best_fp32  Trainer with dynamic padding, group_by_length, its default fused AdamW, fp32
  trainer_best_bf16  the same with bf16 mixed precision
  trainer_best_bf16_alloc  the same with the workbench's allocator settings (transparent huge pages,
                     glibc keeping freed memory), to show how much of the gap those account for

Each recipe runs as a process of its own, as a user would start it: the workbench imports itself
before torch (so its allocator settings apply), the others run with THP_MEM_ALLOC_ENABLE=0 (torch's
default) unless named *_alloc.

Steady state: sentences/s from the end of the warm-up steps to the end of the last step (the
workbench's per-epoch validation is not inside that window). Pad-to-128 recipes run a fixed number
of steps (they are ~15x slower, and every batch costs the same); dynamic-padding recipes run whole
epochs, since their batch lengths vary. MFU = training FLOPs of the real tokens (6 x matmul
parameters + attention) / the matmul peak measured by matmul_peak.py in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

RECIPES = ["workbench", "seed", "trainer_default", "trainer_best_fp32", "trainer_best_bf16",
           "trainer_best_bf16_alloc"]
FIXED_STEP_RECIPES = {"seed", "trainer_default"}


def measure(recipe: str, args: argparse.Namespace) -> dict:
    """Run one recipe in this process and return its figures."""
    if recipe == "workbench" or recipe.endswith("_alloc"):
        import workbench  # noqa: F401  # before torch, as the CLI and the TUI do

    import torch

    if recipe.endswith("_alloc"):
        from workbench.core.train import keep_freed_memory

        keep_freed_memory()

    if args.threads:
        torch.set_num_threads(args.threads)
    model_id = bc.model_name(args.model)
    limit = args.limit
    load_before = bc.loadavg()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if recipe in FIXED_STEP_RECIPES:
            steps = args.warmup + args.steps
            if recipe == "seed":
                marks, model = bc.run_seed(model_id, limit, 1, steps)
            else:
                marks, model = bc.run_trainer(model_id, limit, 1, steps, best=False, bf16=False, out_dir=Path(tmp))
        elif recipe == "workbench":
            marks, _ = bc.run_workbench(model_id, limit, 1, Path(tmp) / "run")
            from workbench.core.model import load_model

            model = load_model(model_id)
        else:
            marks, model = bc.run_trainer(model_id, limit, 1, 0, best=True, bf16="bf16" in recipe,
                                          out_dir=Path(tmp))
    figures = marks.steady(args.warmup)
    figures.update(recipe=recipe, flops_per_token=bc.train_flops_per_token(model, figures["mean_real_len"]),
                   parameters=sum(p.numel() for p in model.parameters()),
                   matmul_parameters=bc.matmul_parameters(model), peak_rss_mb=bc.peak_rss_mb(),
                   load_before=load_before, load_after=bc.loadavg(), threads=torch.get_num_threads())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(RECIPES), help="comma-separated recipes to run")
    parser.add_argument("--model", default=None, help="model id or folder (default: the embedded model)")
    parser.add_argument("--limit", type=int, default=0, help="first N training sentences (0 = all 7,695)")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    parser.add_argument("--steps", type=int, default=40, help="timed steps of the pad-to-128 recipes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--quick", action="store_true", help="512 sentences, 3 warm-up and 8 timed steps")
    parser.add_argument("--no-peak", action="store_true", help="skip the matmul peak (no MFU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.limit, args.warmup, args.steps = args.limit or 512, 3, 8
    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args)), flush=True)
        return

    base = ["--limit", str(args.limit), "--warmup", str(args.warmup), "--steps", str(args.steps),
            "--threads", str(args.threads)] + (["--model", args.model] if args.model else [])
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {bc.machine()}")
    print(f"load average at start: {bc.loadavg():.2f}")
    results: dict[str, dict] = {}
    runs: list[dict] = []
    for recipe in args.only.split(","):
        if recipe not in RECIPES:
            raise SystemExit(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
        env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1" if recipe == "workbench" or recipe.endswith("_alloc") else "0"}
        proc = subprocess.run([sys.executable, __file__, "--child", recipe, *base], capture_output=True, text=True,
                              env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{recipe} failed (exit {proc.returncode})")
        r = json.loads(lines[-1][len("RESULT "):])
        runs.append(r)
        # A recipe named twice (interleaved repeats, e.g. --only workbench,trainer_best_bf16,workbench,...)
        # keeps its faster run in the table; every run is printed here and written to --json.
        if recipe not in results or r["sentences_per_s"] > results[recipe]["sentences_per_s"]:
            results[recipe] = r
        print(f"  {recipe:<18} {r['sentences_per_s']:7.1f} sentences/s, {r['sentences_per_cpu_s']:6.1f} per CPU-second "
              f"({r['steps']} steps, "
              f"{r['seconds']:.1f} s, load {r['load_before']:.2f}->{r['load_after']:.2f})", flush=True)

    peak = {}
    if not args.no_peak:
        from matmul_peak import measure_peak

        peak = measure_peak(tokens=int(bc.BATCH * 12))
    reference = results.get("workbench")
    print()
    print(f"{'recipe':<18} {'sent/s':>8} {'real tok/s':>10} {'pad share':>9} {'vs workbench':>12} "
          f"{'model GFLOP/s':>13} {'MFU':>6} {'peak RSS':>9} {'load':>5}")
    for recipe, r in results.items():
        gflops = r["real_tokens_per_s"] * r["flops_per_token"] / 1e9
        dtype = "bf16" if recipe == "workbench" or "bf16" in recipe else "fp32"
        mfu = f"{gflops / peak[dtype]:.0%}" if dtype in peak else "-"
        ratio = f"{reference['sentences_per_s'] / r['sentences_per_s']:.2f}x" if reference else "-"
        r.update(model_gflops=gflops, mfu=gflops / peak[dtype] if dtype in peak else None, peak_dtype=dtype)
        print(f"{recipe:<18} {r['sentences_per_s']:8.1f} {r['real_tokens_per_s']:10.0f} {r['padding_share']:9.0%} "
              f"{ratio:>12} {gflops:13.1f} {mfu:>6} {r['peak_rss_mb']:7.0f}MB {r['load_after']:5.2f}")
    if reference:
        print("\n'vs workbench' = workbench sentences/s / recipe sentences/s (how many times faster the workbench is)")
        r = reference
        naive = 6 * r["parameters"] * r["real_tokens_per_s"] / 1e9
        print(f"workbench: {r['matmul_parameters'] / 1e6:.1f} M matmul parameters of {r['parameters'] / 1e6:.1f} M; "
              f"6 x all parameters x real tokens/s would claim {naive:.0f} GFLOP/s"
              + (f" ({naive / peak['bf16']:.0%} of the bf16 peak)" if "bf16" in peak else ""))
    if peak:
        print(f"matmul peak at the model's shapes: fp32 {peak['fp32']:.0f} GFLOP/s"
              + (f", bf16 {peak['bf16']:.0f} GFLOP/s" if "bf16" in peak else ""))
    print(f"load average at end: {bc.loadavg():.2f}")
    if args.json:
        figures = {"machine": bc.machine(), "peak": peak, "results": results, "runs": runs}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
