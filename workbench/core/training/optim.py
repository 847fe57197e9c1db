"""The optimizer's pieces: AdamW parameter groups (no decay on biases and LayerNorm, layer-wise rates, the
head's own rate), the warmup length, the length-grouped batch order, and the weight average (--ema-decay)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.base.errors import TrainingError


def layer_index(name: str, num_layers: int) -> int:
    """Depth of a parameter: 0 for embeddings, i+1 for encoder layer i, top for the head."""
    if "embeddings" in name:
        return 0
    match = re.search(r"\.layer\.(\d+)\.", name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


def no_decay(name: str) -> bool:
    """Biases and LayerNorm weights get no weight decay (as in BERT)."""
    lowered = name.lower()
    return lowered.endswith("bias") or "layernorm" in lowered or "layer_norm" in lowered


def is_head(name: str) -> bool:
    """Whether parameter NAME belongs to the classification head (pooler and classifier), above the encoder."""
    return name.startswith(("classifier.", "pooler.")) or ".pooler." in name or ".classifier." in name


def parameter_groups(
    model: Any, learning_rate: float, weight_decay: float, layer_lr_decay: float = 1.0, head_lr_multiplier: float = 1.0
) -> list[dict[str, Any]]:
    """AdamW groups: decay / no decay, times a learning rate per layer when LAYER_LR_DECAY < 1, and
    the head at HEAD_LR_MULTIPLIER times the peak rate (its own groups, last, only when it is not 1:
    with 1 the groups are those of runs made before the setting, so their checkpoints still resume)."""
    num_layers = int(getattr(model.config, "num_hidden_layers", 0))
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_index(name, num_layers) if layer_lr_decay < 1.0 else num_layers + 1
        if head_lr_multiplier != 1.0 and is_head(name):
            depth = num_layers + 2
        skip = no_decay(name)
        key = (depth, skip)
        if key not in groups:
            scale = head_lr_multiplier if depth > num_layers + 1 else layer_lr_decay ** (num_layers + 1 - depth)
            groups[key] = {
                "params": [],
                "names": [],
                "lr": learning_rate * scale,
                "weight_decay": 0.0 if skip else weight_decay,
            }
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


class LengthGroupedSampler:
    """Shuffled indices, grouped so each batch holds sentences of similar length.

    Uses transformers' grouping; the order depends only on (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


class WeightAverage:
    """An exponential moving average of the trainable weights (--ema-decay), updated after each
    optimizer step: ema <- ema + (1 - decay) (w - ema), one foreach lerp over all of them (torch's
    AveragedModel with get_ema_multi_avg_fn does the same lerp, on a deep copy of the whole model
    and its buffers; here only the trainable tensors are copied, the frozen table is not).

    The average starts at the weights as loaded (step 0), as AveragedModel's does."""

    def __init__(self, params: list[Any], decay: float):
        self.decay = decay
        self.tensors = [p.detach().clone() for p in params]

    def update(self, params: list[Any]) -> None:
        import torch

        with torch.no_grad():
            torch._foreach_lerp_(self.tensors, [p.detach() for p in params], 1.0 - self.decay)

    def load(self, saved: list[Any]) -> None:
        if len(saved) != len(self.tensors) or any(a.shape != b.shape for a, b in zip(saved, self.tensors, strict=True)):
            raise TrainingError("the checkpoint's weight average does not match the model's trainable weights")
        with _no_grad():
            for mine, theirs in zip(self.tensors, saved, strict=True):
                mine.copy_(theirs)

    @contextmanager
    def swapped_in(self, params: list[Any]) -> Iterator[None]:
        """PARAMS hold the average inside the block, and their own values again after it."""
        with _no_grad():
            live = [p.detach().clone() for p in params]
            for param, average in zip(params, self.tensors, strict=True):
                param.copy_(average)
        try:
            yield
        finally:
            with _no_grad():
                for param, value in zip(params, live, strict=True):
                    param.copy_(value)


@contextmanager
def _no_grad() -> Iterator[None]:
    import torch

    with torch.no_grad():
        yield


def data_loaders(
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    val_rows: list[dict[str, Any]],
    batch_size: int,
    eval_batch_size: int,
    seed: int,
) -> tuple[Any, Any]:
    """The training loader (length-grouped, shuffled by SEED and the epoch) and the validation loader
    (shortest first), both padding each batch to its longest sentence."""
    import torch
    from transformers import DataCollatorWithPadding

    collator = DataCollatorWithPadding(tokenizer)
    sampler = LengthGroupedSampler([len(r["input_ids"]) for r in train_rows], batch_size, seed)
    # Own generators keep DataLoader iterators from drawing on the global RNG, so
    # dropout draws are the same in a resumed run as in an uninterrupted one.
    train_loader: Any = torch.utils.data.DataLoader(
        train_rows,  # type: ignore[arg-type]  # a list is a map-style dataset
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(0),
    )
    val_order = sorted(range(len(val_rows)), key=lambda i: len(val_rows[i]["input_ids"]))
    val_loader: Any = torch.utils.data.DataLoader(
        [val_rows[i] for i in val_order],  # type: ignore[arg-type]
        batch_size=eval_batch_size,
        shuffle=False,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(0),
    )
    return train_loader, val_loader


def grouped_adamw(model: Any, config: TrainConfig, fused: bool) -> Any:
    """AdamW over CONFIG's parameter groups (`parameter_groups`), fused where FUSED (else foreach)."""
    import torch

    kernel: dict[str, Any] = {"fused": True} if fused else {"foreach": True}
    groups = parameter_groups(
        model, config.learning_rate, config.weight_decay, config.layer_lr_decay, config.head_lr_multiplier
    )
    return torch.optim.AdamW(
        [{k: v for k, v in g.items() if k != "names"} for g in groups],
        lr=config.learning_rate,
        eps=config.adam_epsilon,
        **kernel,
    )
