"""Less work per training step: small, self-contained changes that train() can switch on.

* `freeze_word_embeddings(model)`: the 30,522 x 384 word-embedding table takes no gradient. That
  removes its dense gradient (zeroed every step), half of the fused AdamW's work and half of the
  gradient norm. It changes the recipe (the table stays as pretrained), so it is a setting
  (`TrainConfig.freeze_embeddings`), to become the default only if quality over 3 seeds holds.
* `use_fast_dropout(model)`: the hidden dropouts draw their masks with `torch.rand` (one uniform
  float a element, compared with p) instead of `bernoulli_`, which costs about 1.7x as much on a
  CPU. Same distribution and the same global generator (so a resumed run stays deterministic),
  but another random stream than torch's dropout: losses are not step-for-step equal.

Tried and not kept (benchmarks/ab_speed.py keeps it for the record): bf16 weight copies refreshed by
the optimizer step instead of autocast's per-forward casts. Bitwise the same losses, but no faster
(0.98x, the copy moves the same bytes; the per-forward cast is ~1 % of a step on the AMD machine).

Nothing here imports torch at module level, so `workbench.core` stays light to import.
"""

from __future__ import annotations

import functools
from typing import Any


def freeze_word_embeddings(model: Any) -> int:
    """Stop MODEL's word-embedding table from training; return how many parameters it holds.

    Call before the optimizer's parameter groups are built (they skip frozen parameters).
    Position and token-type embeddings, LayerNorms and the encoder still train."""
    table = model.get_input_embeddings().weight
    table.requires_grad_(False)
    table.grad = None
    return int(table.numel())


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


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


class DeviceLossMeter:
    """The training loss and its non-finite check kept on the device, read on the host at intervals.

    `add(loss, step)` every step launches two small device ops and never waits for the device;
    `read()` is the one host-device sync: the mean loss since the last read (finite steps only) and
    the first step whose loss was not finite, if any. On a CPU there is no device to wait for, so
    reading every step costs nothing; on a GPU, read at the chart's interval (and at epoch ends)."""

    def __init__(self, device: Any):
        import torch

        self._torch = torch
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.first_bad = torch.full((), -1.0, dtype=torch.float32, device=device)
        self.count = 0

    def add(self, loss: Any, step: int) -> None:
        torch = self._torch
        value = loss.detach().float()
        finite = torch.isfinite(value)
        self.loss_sum += torch.where(finite, value, torch.zeros_like(value))
        self.first_bad = torch.where(~finite & (self.first_bad < 0), float(step), self.first_bad)
        self.count += 1

    def read(self) -> tuple[float, int | None]:
        """(mean loss since the last read, first non-finite step or None); resets the mean."""
        loss_sum, first_bad = self._torch.stack([self.loss_sum, self.first_bad]).tolist()  # the one sync
        mean = loss_sum / self.count if self.count else float("nan")
        self.loss_sum.zero_()
        self.count = 0
        return mean, (int(first_bad) if first_bad >= 0 else None)
