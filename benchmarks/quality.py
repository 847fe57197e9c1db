"""Quality at speed: holdout MCC of the workbench, the seed recipe and Trainer at its best, same epochs.

    python benchmarks/quality.py --epochs 2            # about 10 minutes on 2 quiet cores
    python benchmarks/quality.py --epochs 4 --seeds 42,43

  workbench     its defaults (learning rate 1e-4 with layer-wise decay 0.85, bf16 where the CPU has it),
                the epoch with the best validation MCC kept, as the workbench does
  seed          the seed notebook's optimiser (AdamW 2e-5, warm-up 10%, weight decay 0.01, clip 1.0),
                shuffled batches, fp32, the final model. Padded to each batch's longest sentence unless
                --seed-pad128: padding is masked out of attention and loss, so the maths is the same
                as padding to 128 (up to float rounding) at a tenth of the cost.
  trainer_best  transformers.Trainer at its fastest settings (dynamic padding, group_by_length, fused
                AdamW, bf16) with the seed notebook's optimiser settings, the final model.

Holdout = out_of_domain_dev (516 sentences), scored in fp32 by workbench.core.evaluation.evaluate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

RECIPES = ["workbench", "seed", "trainer_best"]


def run(recipe: str, epochs: int, seed: int, args: argparse.Namespace) -> dict:
    model_id = bc.model_name(args.model)
    bc.SEED = seed
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        if recipe == "workbench":
            marks, info = bc.run_workbench(model_id, args.limit, epochs, Path(tmp) / "run", {"seed": seed})
            mcc = info["holdout_mcc"]
        elif recipe == "seed":
            marks, model = bc.run_seed(model_id, args.limit, epochs, 0, pad_to=128 if args.seed_pad128 else 0)
            mcc = bc.holdout_mcc(model, model_id)
        else:
            marks, model = bc.run_trainer(
                model_id, args.limit, epochs, 0, best=True, bf16=args.trainer_precision == "bf16", out_dir=Path(tmp)
            )
            mcc = bc.holdout_mcc(model, model_id)
    steady = marks.steady(5)
    return {
        "recipe": recipe,
        "epochs": epochs,
        "seed": seed,
        "holdout_mcc": mcc,
        "sentences_per_s": steady["sentences_per_s"],
        "wall_s": time.perf_counter() - started,
        "load": bc.loadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", default="42", help="comma-separated training seeds")
    parser.add_argument("--only", default=",".join(RECIPES))
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=0, help="first N training sentences (0 = all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed-pad128", action="store_true", help="pad the seed recipe to 128 (10x slower)")
    parser.add_argument("--trainer-precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {bc.machine()}; load average {bc.loadavg():.2f}; {args.epochs} epochs", flush=True)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for recipe in args.only.split(","):
            row = run(recipe, args.epochs, seed, args)
            rows.append(row)
            print(
                f"  {recipe:<13} seed {seed}: holdout MCC {row['holdout_mcc']:.3f}  "
                f"({row['sentences_per_s']:.0f} sentences/s, {row['wall_s']:.0f} s, load {row['load']:.2f})",
                flush=True,
            )
    print()
    print(f"{'recipe':<13} {'epochs':>6} {'holdout MCC (median)':>21} {'seeds':>6}")
    for recipe in args.only.split(","):
        values = [r["holdout_mcc"] for r in rows if r["recipe"] == recipe]
        print(f"{recipe:<13} {args.epochs:>6} {statistics.median(values):21.3f} {len(values):>6}")
    if args.json:
        args.json.write_text(json.dumps({"machine": bc.machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
