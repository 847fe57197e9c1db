"""Where one training step of the workbench goes: torch.profiler around the workbench's own `train()`.

    python benchmarks/profile_step.py                       # embedded model, bf16 where the CPU has it
    python benchmarks/profile_step.py --threads 1 --active 10
    python benchmarks/profile_step.py --freeze-embeddings   # needs the train() hook (workbench.core.training.speed)

The profiler is stepped by train()'s own "step" events, so what it records is exactly the steps
the workbench runs (its Accelerate autocast, fused AdamW with the clip folded in, zero_grad), not
a copy of its loop. It skips the first --wait steps, warms up for --warmup, records --active, and
prints each bucket's share of the recorded self CPU time (matmul, casts, AdamW, embedding gradient,
dropout, ...) and the top operators. Under load the shares hold better than the absolute times.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

import workbench  # noqa: E402,F401  # before torch: its allocator settings

# Operator name -> bucket, first match wins. Self time of every operator goes to one bucket.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    (
        "matmul",
        ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear", "mkldnn", "onednn"),
    ),
    ("casts (to/_to_copy/copy_)", ("aten::to", "aten::_to_copy", "aten::copy_", "aten::_foreach_copy_")),
    ("AdamW", ("adamw", "adam", "aten::_fused_adam")),
    (
        "embedding gradient",
        (
            "aten::embedding_dense_backward",
            "aten::embedding_backward",
            "aten::index_add_",
            "aten::index_put_",
            "aten::_embedding_bag",
            "aten::embedding",
        ),
    ),
    ("zeroing / fill", ("aten::zero_", "aten::fill_", "aten::zeros", "aten::_foreach_zero_")),
    (
        "gradient norm / clip",
        (
            "aten::_foreach_norm",
            "aten::linalg_vector_norm",
            "aten::norm",
            "aten::stack",
            "aten::clamp",
            "aten::_foreach_mul_",
        ),
    ),
    (
        "dropout",
        (
            "aten::dropout",
            "aten::native_dropout",
            "aten::bernoulli_",
            "aten::native_dropout_backward",
            "aten::empty_like",
            "aten::uniform_",
            "aten::lt",
        ),
    ),
    ("layer norm", ("aten::native_layer_norm", "aten::layer_norm", "aten::native_layer_norm_backward")),
    (
        "softmax / attention",
        (
            "aten::_softmax",
            "aten::softmax",
            "aten::_softmax_backward_data",
            "aten::scaled_dot_product_attention",
            "aten::_scaled_dot_product",
        ),
    ),
    ("gelu", ("aten::gelu", "aten::gelu_backward")),
    (
        "elementwise add/mul/div",
        (
            "aten::add",
            "aten::add_",
            "aten::mul",
            "aten::div",
            "aten::sub",
            "aten::where",
            "aten::masked_fill",
            "aten::rsub",
        ),
    ),
    ("gradient accumulation (AccumulateGrad)", ("autograd::engine::evaluate_function: AccumulateGrad", "aten::detach")),
    ("memory (empty/resize)", ("aten::empty", "aten::empty_strided", "aten::resize_", "[memory]")),
    (
        "reshape / view / transpose",
        (
            "aten::view",
            "aten::reshape",
            "aten::transpose",
            "aten::t",
            "aten::permute",
            "aten::expand",
            "aten::contiguous",
            "aten::clone",
            "aten::_unsafe_view",
            "aten::as_strided",
            "aten::slice",
            "aten::select",
            "aten::unsqueeze",
            "aten::cat",
        ),
    ),
]


def bucket_of(name: str) -> str:
    low = name.lower()
    for bucket, keys in BUCKETS:
        for key in keys:
            if low == key.lower() or (key.startswith(("adam", "mkldnn", "onednn")) and key in low):
                return bucket
    return "other"


def shares(events: Any) -> tuple[dict[str, float], list[tuple[str, float, int]]]:
    """Self CPU time per bucket (microseconds) and the top operators, from key_averages()."""
    per_bucket: dict[str, float] = defaultdict(float)
    ops = []
    for e in events:
        name = e.key
        self_us = float(e.self_cpu_time_total)
        if name.startswith("ProfilerStep") or self_us <= 0:
            continue
        per_bucket[bucket_of(name)] += self_us
        ops.append((name, self_us, int(e.count)))
    ops.sort(key=lambda x: -x[1])
    return dict(per_bucket), ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=32 * 40, help="training sentences (one short epoch)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--wait", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--active", type=int, default=10)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--freeze-embeddings", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--shapes", action="store_true", help="also list the casts, fills and dropout masks by input shape"
    )
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    from workbench.core.base.config import TrainConfig
    from workbench.core.training.train import train

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {}
    if args.freeze_embeddings:
        overrides["freeze_embeddings"] = True
    config = TrainConfig(
        model=bc.model_name(args.model),
        epochs=1,
        batch_size=bc.BATCH,  # the default run's batch (batch_size 0 picks 8 for a single epoch)
        train_limit=args.limit,
        precision=args.precision,
        **overrides,
    )
    needed = args.wait + args.warmup + args.active
    if args.limit // config.batch_size < needed + 1:
        raise SystemExit(f"--limit {args.limit} gives fewer than {needed + 1} steps")
    load_before = bc.loadavg()
    prof = profile(
        activities=[ProfilerActivity.CPU],
        record_shapes=args.shapes,
        schedule=schedule(wait=args.wait, warmup=args.warmup, active=args.active, repeat=1),
    )
    steps = 0

    def on_event(event: dict[str, Any]) -> None:
        nonlocal steps
        if event["kind"] == "step":
            steps += 1
            prof.step()

    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        with prof:
            result = train(config, Path(tmp) / "run", on_event=on_event)
        if result.status != "done":
            raise SystemExit(f"training ended {result.status}: {result.error}")
        if args.freeze_embeddings:
            from throughput import check_frozen

            check_frozen(Path(tmp) / "run", config.model)  # fails unless train() honours the setting
    per_bucket, ops = shares(prof.key_averages())
    total = sum(per_bucket.values())
    print(
        f"machine: {bc.machine()}; amx: {'yes' if bc.has_amx() else 'no'}; load {load_before:.2f} -> {bc.loadavg():.2f}"
    )
    print(
        f"{args.active} profiled steps of train() (after {args.wait + args.warmup}), precision {config.precision}"
        f"{', word embeddings frozen' if args.freeze_embeddings else ''}: "
        f"{total / args.active / 1e3:.1f} ms self CPU time a step"
    )
    print("\n| bucket | share | ms/step |\n|---|---|---|")
    for bucket, us in sorted(per_bucket.items(), key=lambda x: -x[1]):
        print(f"| {bucket} | {us / total:.1%} | {us / args.active / 1e3:.1f} |")
    print(f"\ntop {args.top} operators by self CPU time:")
    for name, us, count in ops[: args.top]:
        print(
            f"  {us / total:6.1%} {us / args.active / 1e3:7.2f} ms/step  x{count // args.active:<4} {name}"
            f"  [{bucket_of(name)}]"
        )
    if args.shapes:
        print("\ncasts, fills and dropout masks by input shape (self CPU time, ms/step):")
        rows = []
        for e in prof.key_averages(group_by_input_shape=True):
            if e.key in ("aten::_to_copy", "aten::copy_", "aten::fill_", "aten::zero_", "aten::bernoulli_"):
                rows.append((float(e.self_cpu_time_total), e.key, str(e.input_shapes)[:90], int(e.count)))
        for us, name, shape, count in sorted(rows, reverse=True)[:20]:
            print(f"  {us / args.active / 1e3:7.2f}  x{count // args.active:<4} {name} {shape}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": bc.machine(),
                    "load": [load_before, bc.loadavg()],
                    "steps": args.active,
                    "buckets_us": per_bucket,
                    "top": ops[:60],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
