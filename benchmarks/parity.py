"""Quality parity: the workbench and transformers.Trainer with identical hyperparameters, several seeds.

    python benchmarks/parity.py                                   # 3 seeds x (workbench, trainer), 8 epochs: long
    python benchmarks/parity.py --variants workbench,workbench_trained  # does freezing the table keep quality?
    python benchmarks/parity.py --quick                           # 256 sentences, 1 epoch, 1 seed: a check

Does the speed path keep quality? Both sides get the workbench's recipe (TrainConfig's defaults unless
--epochs/--limit say otherwise): the same model and head initialisation (seeded), the same train part
and validation part of in_domain_train, batch 32, AdamW with the workbench's parameter groups (layer-wise
learning-rate decay, no decay on biases and LayerNorm), eps, linear warm-up and decay, clipping at 1.0,
bf16 autocast where the CPU has it, batches grouped by length. Trainer gets that optimizer and schedule
through `optimizers=`, and a callback that scores the validation part after every epoch and keeps the
best epoch's weights, as the workbench keeps its best model. Then both best models are scored in fp32 by
workbench.core.evaluation.evaluate on in_domain_dev and the holdout (out_of_domain_dev).

Verdict (every variant against the first): the two medians over seeds differ by less than the
larger seed spread (max - min) -> "within seed noise". With 3 seeds that is a coarse test; more
seeds (--seeds) narrow it.

Variants: workbench (its defaults: since round 2 the word-embedding table is frozen), trainer (trains
the table, as Trainer does), workbench_frozen and trainer_frozen (table frozen:
workbench.core.training.speed.freeze_word_embeddings), workbench_trained (table trained), workbench_sdpa
(the default with torch's SDPA instead of the CPU attention lever, `speed.cpu_attention`: the step before
it). The round-2 record
`results/parity_amd.txt` was taken when the workbench's default still trained the table: its
"workbench" row is today's workbench_trained, and its "workbench_frozen" row today's default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

import workbench  # noqa: E402,F401  # before torch: its allocator settings

VARIANTS = ["workbench", "trainer", "workbench_frozen", "workbench_trained", "trainer_frozen", "workbench_sdpa"]
METRICS = ["best_val_mcc", "in_domain_dev_mcc", "holdout_mcc"]


def run_workbench(config: Any, frozen: bool | None, sdpa: bool = False) -> dict[str, Any]:
    from unittest import mock

    from workbench.core.training import speed
    from workbench.core.training.train import train

    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        if frozen is not None:
            config.freeze_embeddings = frozen
        # workbench_sdpa: the step as it was before the CPU attention lever (torch's SDPA)
        with mock.patch.object(speed, "cpu_attention", lambda model: False) if sdpa else contextlib.nullcontext():
            result = train(config, Path(tmp) / "run")
        if result.status != "done":
            raise SystemExit(f"workbench training ended {result.status}: {result.error}")
        if config.freeze_embeddings:
            from throughput import check_frozen

            check_frozen(Path(tmp) / "run", config.model)
    return {
        "best_val_mcc": result.best_val_mcc,
        "best_epoch": result.best_epoch,
        "in_domain_dev_mcc": result.final.get("in_domain_dev_mcc"),
        "holdout_mcc": result.final.get("holdout_mcc"),
        "val_mcc_by_epoch": [h["val_mcc"] for h in result.history],
    }


def run_trainer(config: Any, frozen: bool | None) -> dict[str, Any]:
    """transformers.Trainer with the workbench's recipe; the best epoch by validation MCC kept."""
    import torch
    from accelerate.utils import set_seed
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        get_linear_schedule_with_warmup,
    )

    from workbench.core.base.hardware import resolve_precision
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import evaluate_frame
    from workbench.core.model.loading import load_model, load_tokenizer
    from workbench.core.training.optim import parameter_groups, warmup_steps
    from workbench.core.training.prepare import encode
    from workbench.core.training.speed import freeze_word_embeddings

    cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
    train_frame = cola["train"].iloc[: config.train_limit] if config.train_limit else cola["train"]
    set_seed(config.seed)  # as train() does before loading: the same head initialisation
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model)
    if frozen:
        freeze_word_embeddings(model)
    rows = encode(tokenizer, train_frame["sentence"].tolist(), train_frame["label"].tolist(), config.max_length)
    bf16 = resolve_precision(config.precision, "cpu") == "bf16"
    groups = parameter_groups(model, config.learning_rate, config.weight_decay, config.layer_lr_decay)
    optimizer = torch.optim.AdamW(
        [{k: v for k, v in g.items() if k != "names"} for g in groups],
        lr=config.learning_rate,
        eps=config.adam_epsilon,
        fused=True,
    )
    total = math.ceil(len(rows) / config.batch_size) * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps(total, config.warmup_ratio), total)
    best: dict[str, Any] = {"mcc": -2.0, "epoch": 0, "state": None, "by_epoch": []}

    class KeepBest(TrainerCallback):
        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                report = evaluate_frame(
                    model, tokenizer, cola["validation"], "validation", config.max_length, config.eval_batch_size
                )
            model.train()
            best["by_epoch"].append(report.mcc)
            if report.mcc > best["mcc"]:
                best.update(
                    mcc=report.mcc,
                    epoch=len(best["by_epoch"]),
                    state={k: v.detach().clone() for k, v in model.state_dict().items()},
                )

    with tempfile.TemporaryDirectory(prefix="parity-trainer-") as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=config.batch_size,
            num_train_epochs=config.epochs,
            max_grad_norm=config.max_grad_norm,
            seed=config.seed,
            use_cpu=not torch.cuda.is_available(),
            bf16=bf16,
            train_sampling_strategy="group_by_length",
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            disable_tqdm=True,
            logging_strategy="no",
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=rows,
            data_collator=DataCollatorWithPadding(tokenizer),
            optimizers=(optimizer, scheduler),
            callbacks=[KeepBest()],
        )
        trainer.train()
    model.load_state_dict(best["state"])
    model = model.float().eval()
    dev, holdout = (
        evaluate_frame(model, tokenizer, cola[name], name, config.max_length, config.eval_batch_size)
        for name in ("in_domain_dev", "holdout")
    )
    return {
        "best_val_mcc": best["mcc"],
        "best_epoch": best["epoch"],
        "in_domain_dev_mcc": dev.mcc,
        "holdout_mcc": holdout.mcc,
        "val_mcc_by_epoch": best["by_epoch"],
    }


def frozen_setting(variant: str) -> bool | None:
    """The variant's word-embedding table: frozen (True), trained (False), or the side's default (None:
    the workbench's TrainConfig default, which freezes it since round 2; Trainer trains it)."""
    if variant.endswith("_frozen"):
        return True
    if variant.endswith("_trained"):
        return False
    return None


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="workbench,trainer")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--epochs", type=int, default=0, help="0 = TrainConfig's default")
    parser.add_argument("--limit", type=int, default=0, help="first N training sentences (0 = all)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="256 sentences, 1 epoch, seed 42")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.limit, args.epochs = args.limit or 256, args.epochs or 1
        if "--seeds" not in sys.argv:
            args.seeds = "42"
    import torch

    from workbench.core.base.config import TrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    if set(variants) - set(VARIANTS):
        raise SystemExit(f"unknown variants {sorted(set(variants) - set(VARIANTS))}; choose from {VARIANTS}")
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"machine: {bc.machine()}; amx: {'yes' if bc.has_amx() else 'no'}; load {bc.loadavg():.2f}", flush=True)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for variant in variants:
            config = TrainConfig(model=bc.model_name(args.model), seed=seed, train_limit=args.limit)
            if args.epochs:
                config.epochs = args.epochs
            started = time.perf_counter()
            if variant.startswith("workbench"):
                ran = run_workbench(config, frozen_setting(variant), sdpa=variant == "workbench_sdpa")
            else:
                ran = run_trainer(config, frozen_setting(variant))
            row = {
                "variant": variant,
                "seed": seed,
                "epochs": config.epochs,
                **ran,
                "wall_s": time.perf_counter() - started,
                "load": bc.loadavg(),
            }
            rows.append(row)
            print(
                f"  seed {seed} {variant:<17} validation {row['best_val_mcc']:.3f} (epoch {row['best_epoch']}), "
                f"in_domain_dev {row['in_domain_dev_mcc']:.3f}, holdout {row['holdout_mcc']:.3f} "
                f"({row['wall_s']:.0f} s, load {row['load']:.1f})",
                flush=True,
            )
    print(
        f"\n{len(seeds)} seed(s), {rows[0]['epochs']} epochs, "
        f"{args.limit or 'all'} training sentences; median (min–max) over seeds\n"
    )
    print("| variant | best validation MCC | in_domain_dev MCC | holdout MCC |\n|---|---|---|---|")
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        print(f"| {variant} | " + " | ".join(spread([r[m] for r in mine]) for m in METRICS) + " |")
    first = variants[0]
    for second in variants[1:] if len(seeds) >= 2 else []:
        print()
        for metric in METRICS:
            a = [r[metric] for r in rows if r["variant"] == first]
            b = [r[metric] for r in rows if r["variant"] == second]
            gap = statistics.median(a) - statistics.median(b)
            noise = max(max(a) - min(a), max(b) - min(b))
            print(
                f"{metric}: {first} - {second} = {gap:+.3f} (medians); larger seed spread {noise:.3f} -> "
                f"{'within seed noise' if abs(gap) <= noise else 'OUTSIDE seed noise'}"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": bc.machine(), "args": vars(args) | {"json": None}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
