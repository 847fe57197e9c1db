"""A/B of the training step's speed changes, alternating short runs in one process.

    python benchmarks/ab_speed.py                                   # base, frozen, bf16cache, both
    python benchmarks/ab_speed.py --variants base,bf16cache --rounds 6 --chunk 8 --threads 1

Each variant has its own copy of the model, its own fused AdamW (the workbench's parameter groups:
layer-wise decay 0.85, no decay on biases/LayerNorm), warm-up schedule and clip folded into the
optimizer (`clip_and_step`), under bf16 autocast as train() runs on a CPU with bf16. Every variant
takes the same length-grouped batches in the same order with the same dropout seed per step, so
their loss curves can be compared step by step. Rounds run CHUNK steps of each variant in turn, the
order rotated every round; the figures are per variant: sentences per CPU-second and per wall
second over all its chunks, and the median of its per-round ratio to `base` (the same round's
chunks saw the same batches and nearly the same machine load).

Variants: base (train()'s step before the last layer skipped its non-[CLS] positions), clsonly
(`cls_only_last_layer`: train()'s step today), frozen (word-embedding table frozen: `freeze_word_embeddings`),
fastdrop (`use_fast_dropout` below: rand-mask dropout, tried, not kept; another random stream, so its losses differ from
base by dropout noise, not by error), bf16cache (`Bf16WeightCache` below: bf16 weight copies refreshed
by the optimizer step; tried, not kept), attn (`cpu_attention`: the attention in bf16 with the cheap masks, kept),
combinations with '+', and fp32 (no autocast, for the size of bf16's own noise in the loss).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_common as bc  # noqa: E402

import workbench  # noqa: E402,F401  # before torch: its allocator settings

VARIANTS = [
    "base",
    "clsonly",
    "frozen+clsonly",
    "clsonly+bitsdrop",
    "frozen+clsonly+bitsdrop",
    "frozen",
    "fastdrop",
    "frozen+fastdrop",
    "bf16cache",
    "frozen+bf16cache",
    "fp32",
    "frozen+clsonly+bitsdrop+attn",
]


# ---------------------------------------------------------------- tried, not kept: rand-mask dropout
# The hidden dropouts' masks drawn with torch.rand (one float32 uniform an element, compared with p)
# instead of bernoulli_: the mask alone costs ~0.6 vs ~1.0 ms for 32 x 14 x 384 (1 thread, under load),
# but the step was not measurably faster in the A/B (1.005x, 0.92-1.36, under load; dropout masks are
# ~5 % of a step, 14 of its 20 in nn.Dropout modules, the other 6 inside SDPA). Same distribution,
# another random stream.


@functools.cache
def rand_mask_dropout_class() -> Any:
    """The nn.Module class of the rand-mask dropout (built on first use: torch loads lazily)."""
    import torch

    class RandMaskDropout(torch.nn.Module):
        """Inverted dropout whose mask is `rand >= p` (float32 uniforms), not bernoulli_."""

        def __init__(self, p: float):
            super().__init__()
            self.p = p  # BertSdpaSelfAttention reads .p of its dropout module for SDPA's own dropout

        def forward(self, x: Any) -> Any:
            if not self.training or self.p == 0.0:
                return x
            if self.p == 1.0:
                return x * 0.0
            keep = torch.rand(x.shape, device=x.device) >= self.p
            return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))

        def extra_repr(self) -> str:
            return f"p={self.p}"

    return RandMaskDropout


def use_fast_dropout(model: Any) -> int:
    """Replace every nn.Dropout in MODEL by the rand-mask dropout; return how many were replaced.

    Attention-probability dropout inside SDPA is not an nn.Dropout call and stays as it is."""
    import torch

    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Dropout:
                setattr(parent, name, rand_mask_dropout_class()(child.p))
                replaced += 1
    return replaced


# ---------------------------------------------------------------- tried, not kept: cached bf16 weights
# Kept here (not in workbench/core/speed.py) as the record of the A/B: same losses bit for bit as
# autocast, but no faster on the AMD EPYC (0.98x, 0.88-1.06, under load): the per-step copy moves
# the same bytes as autocast's cast, which is about 1 % of a step there.


def _linear_bf16_function() -> Any:
    import torch

    class LinearBf16(torch.autograd.Function):
        """y = x16 @ w16.T + b16 with the cached bf16 weight; gradients for the fp32 weight and bias.

        The backward is autocast's: the weight gradient is a bf16 matmul, cast to fp32."""

        @staticmethod
        def forward(ctx: Any, x16: Any, weight: Any, bias: Any, weight16: Any) -> Any:
            bias16 = None if bias is None else bias.to(torch.bfloat16)
            ctx.save_for_backward(x16, weight16)
            ctx.has_bias = bias is not None
            return torch.nn.functional.linear(x16, weight16, bias16)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            x16, weight16 = ctx.saved_tensors
            grad_2d = grad.to(torch.bfloat16).reshape(-1, grad.shape[-1])  # 2-D: one mm, never a bmm
            grad_x = (grad_2d @ weight16).view(*grad.shape[:-1], weight16.shape[1]) if ctx.needs_input_grad[0] else None
            grad_w = (grad_2d.t() @ x16.reshape(-1, x16.shape[-1])).float() if ctx.needs_input_grad[1] else None
            grad_b = grad_2d.sum(0).float() if ctx.has_bias and ctx.needs_input_grad[2] else None
            return grad_x, grad_w, grad_b, None

    return LinearBf16


class Bf16WeightCache:
    """Keep a bf16 copy of every nn.Linear weight of MODEL, refreshed after each OPTIMIZER step.

    While attached, a Linear in a bf16-autocast region computes with its cached copy (no per-forward
    cast); outside autocast (fp32 evaluation) it runs as before. The copies follow the fp32 weights
    through an optimizer step post-hook and a load_state_dict post-hook, so resuming and stepping
    need no extra calls. `detach()` restores the modules."""

    def __init__(self, model: Any, optimizer: Any | None = None):
        import torch

        self._torch = torch
        self._function = _linear_bf16_function()
        self.modules = [
            m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.float32
        ]
        self.weights = [m.weight for m in self.modules]
        self.copies = [torch.empty_like(w, dtype=torch.bfloat16) for w in self.weights]
        self._handles: list[Any] = []
        for module, weight16 in zip(self.modules, self.copies, strict=True):
            module.forward = self._forward_for(module, weight16)  # type: ignore[method-assign]
        if optimizer is not None:
            inner = getattr(optimizer, "optimizer", optimizer)  # Accelerate's wrapper
            self._handles.append(inner.register_step_post_hook(lambda *_: self.refresh()))
        self._handles.append(model.register_load_state_dict_post_hook(lambda *_: self.refresh()))
        self.refresh()

    def _forward_for(self, module: Any, copy: Any) -> Any:
        torch = self._torch
        function = self._function

        def forward(x: Any) -> Any:
            if (
                not torch.is_autocast_enabled(x.device.type)
                or torch.get_autocast_dtype(x.device.type) != torch.bfloat16
            ):
                return torch.nn.functional.linear(x, module.weight, module.bias)
            return function.apply(x.to(torch.bfloat16), module.weight, module.bias, copy)

        return forward

    def refresh(self) -> None:
        """Copy the fp32 weights into their bf16 copies (one foreach op)."""
        with self._torch.no_grad():
            self._torch._foreach_copy_(self.copies, self.weights)

    def detach(self) -> None:
        for module in self.modules:
            del module.forward  # back to the class's forward
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def batches(model_id: str, limit: int, batch_size: int, seed: int) -> list[dict[str, Any]]:
    """The workbench's length-grouped batches of one epoch, collated as train() collates them."""
    from transformers import DataCollatorWithPadding

    from workbench.core.model.loading import load_tokenizer
    from workbench.core.training.optim import LengthGroupedSampler
    from workbench.core.training.prepare import encode

    tokenizer = load_tokenizer(model_id)
    sentences, labels = bc.train_sentences(limit)
    rows = encode(tokenizer, sentences, labels, 128)
    order = list(LengthGroupedSampler([len(r["input_ids"]) for r in rows], batch_size, seed))
    collate = DataCollatorWithPadding(tokenizer)
    return [collate([rows[i] for i in order[k : k + batch_size]]) for k in range(0, len(order), batch_size)]


class Runner:
    """One variant: its model, optimizer and schedule, stepped a chunk at a time."""

    def __init__(self, name: str, base_model: Any, accelerator: Any, total_steps: int):
        import torch
        from transformers import get_linear_schedule_with_warmup

        from workbench.core.base.config import TrainConfig
        from workbench.core.training.optim import parameter_groups, warmup_steps
        from workbench.core.training.speed import (
            cheap_dropout,
            cls_only_last_layer,
            cpu_attention,
            freeze_word_embeddings,
        )

        config = TrainConfig()
        self.name = name
        self.model = copy.deepcopy(base_model).train()
        if "frozen" in name:
            freeze_word_embeddings(self.model)
        if "bitsdrop" in name:
            cheap_dropout(self.model)
        if "clsonly" in name:
            cls_only_last_layer(self.model)
        if "attn" in name:
            cpu_attention(self.model)
        if "fastdrop" in name:
            use_fast_dropout(self.model)
        groups = parameter_groups(self.model, config.learning_rate, config.weight_decay, config.layer_lr_decay)
        self.optimizer = torch.optim.AdamW(
            [{k: v for k, v in g.items() if k != "names"} for g in groups],
            lr=config.learning_rate,
            eps=config.adam_epsilon,
            fused=True,
        )
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, warmup_steps(total_steps, config.warmup_ratio), total_steps
        )
        self.cache = Bf16WeightCache(self.model, self.optimizer) if "bf16cache" in name else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.accelerator = accelerator
        self.max_norm = config.max_grad_norm
        self.bf16 = name != "fp32"
        self.losses: list[float] = []
        self.cpu: list[float] = []
        self.wall: list[float] = []
        self.sentences: list[int] = []

    def run(self, chunk: list[tuple[int, dict[str, Any]]]) -> None:
        import torch

        from workbench.core.training.step import clip_and_step

        wall, cpu = time.perf_counter(), time.process_time()
        for step, batch in chunk:
            torch.manual_seed(1000 + step)  # the same dropout masks for every variant at this step
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = self.model(**batch).loss
            self.losses.append(float(loss.detach().float().item()))  # as train() reads it today
            loss.backward()
            clip_and_step(self.accelerator, self.optimizer, self.params, self.max_norm)
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.cpu.append(time.process_time() - cpu)
        self.wall.append(time.perf_counter() - wall)
        self.sentences.append(sum(int(b["labels"].shape[0]) for _, b in chunk))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="base,frozen,fastdrop,frozen+fastdrop")
    parser.add_argument("--model", default=None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--chunk", type=int, default=8, help="steps of a variant per turn")
    parser.add_argument("--warmup", type=int, default=1, help="rounds left out of the timing")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from accelerate import Accelerator

    from workbench.core.model.loading import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    if "base" not in names:
        names.insert(0, "base")
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    model_id = bc.model_name(args.model)
    steps = args.rounds * args.chunk
    all_batches = batches(model_id, 32 * steps, 32, 42)[:steps]
    torch.manual_seed(0)
    base_model = load_model(model_id)
    accelerator = Accelerator(cpu=True)
    from workbench.core.base.hardware import keep_freed_memory

    keep_freed_memory()
    runners = [Runner(name, base_model, accelerator, steps) for name in names]
    load = [bc.loadavg()]
    print(f"machine: {bc.machine()}; amx: {'yes' if bc.has_amx() else 'no'}; load {load[0]:.2f}", flush=True)
    for r in range(args.rounds):
        chunk = list(enumerate(all_batches))[r * args.chunk : (r + 1) * args.chunk]
        rotated = runners[r % len(runners) :] + runners[: r % len(runners)]
        for runner in rotated:
            runner.run(chunk)
        load.append(bc.loadavg())
        print(
            f"  round {r + 1}: "
            + ", ".join(f"{x.name} {x.sentences[-1] / x.cpu[-1]:.0f}/cpu-s" for x in runners)
            + f" (load {load[-1]:.2f})",
            flush=True,
        )
    base = runners[0]
    timed = slice(args.warmup, None)
    print(
        f"\n{len(runners)} variants x {args.rounds} rounds of {args.chunk} steps (first {args.warmup} "
        f"round(s) untimed), {torch.get_num_threads()} threads, load {min(load):.1f}-{max(load):.1f} "
        f"(under load: compare ratios, not rates)"
    )
    print(
        "| variant | sentences/CPU-s | sentences/s | median ratio to base (CPU) | min-max | max abs loss diff "
        "vs base | mean abs |"
    )
    print("|---|---|---|---|---|---|---|")
    figures = {}
    for x in runners:
        sentences = sum(x.sentences[timed])
        ratios = [b / a for a, b in zip(x.cpu[timed], base.cpu[timed], strict=True)]  # >1: faster than base
        diffs = [abs(a - b) for a, b in zip(x.losses, base.losses, strict=True)]
        figures[x.name] = {
            "per_cpu_s": sentences / sum(x.cpu[timed]),
            "per_s": sentences / sum(x.wall[timed]),
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "loss_max_diff": max(diffs),
            "loss_mean_diff": statistics.fmean(diffs),
            "losses": x.losses,
            "cpu": x.cpu,
            "wall": x.wall,
        }
        f = figures[x.name]
        print(
            f"| {x.name} | {f['per_cpu_s']:.0f} | {f['per_s']:.0f} | {f['ratio_median']:.3f} | "
            f"{f['ratio_min']:.2f}-{f['ratio_max']:.2f} | {f['loss_max_diff']:.4f} | {f['loss_mean_diff']:.4f} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": bc.machine(), "load": load, "args": vars(args) | {"json": None}, "variants": figures},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
