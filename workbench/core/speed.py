"""Less work per training step: small, self-contained changes that train() can switch on.

* `freeze_word_embeddings(model)`: the 30,522 x 384 word-embedding table takes no gradient. That
  removes its dense gradient (zeroed every step), half of the fused AdamW's work and half of the
  gradient norm. It changes the recipe (the table stays as pretrained), so it is a setting
  (`TrainConfig.freeze_embeddings`), to become the default only if quality over 3 seeds holds.
* `DeviceLossMeter`: the loss sum and the non-finite check stay on the device; the host reads
  them (one sync) at the chart's interval instead of `loss.item()` every step.

Tried and not kept (benchmarks/ab_speed.py keeps them for the record, with their A/B numbers):
bf16 weight copies refreshed by the optimizer step instead of autocast's per-forward casts (bitwise
the same losses, not faster: 0.98x); dropout masks from `torch.rand` instead of `bernoulli_` (the mask
is ~1.7x cheaper alone, but the step was not measurably faster: 1.005x, under load).

Nothing here imports torch at module level, so `workbench.core` stays light to import.
"""

from __future__ import annotations

from typing import Any, NamedTuple


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


class LossReading(NamedTuple):
    mean: float  # mean loss of the finite steps since the last read (nan if none)
    steps: int  # steps added since the last read
    first_nonfinite_step: int | None  # the first step whose loss was nan or inf, ever


class DeviceLossMeter:
    """The training loss and its non-finite check kept on the device, read on the host at intervals.

    `add(loss, step)` every step launches a few small device ops and never waits for the device;
    `read()` is the one host-device sync. On a CPU there is no device to wait for, so reading every
    step costs nothing; on a GPU, read at the chart's interval and at the epoch's end."""

    def __init__(self, device: Any):
        import torch

        self._torch = torch
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.finite = torch.zeros((), dtype=torch.float32, device=device)
        self.first_bad = torch.full((), -1.0, dtype=torch.float32, device=device)
        self.count = 0

    def add(self, loss: Any, step: int) -> None:
        torch = self._torch
        value = loss.detach().float()
        finite = torch.isfinite(value)
        self.loss_sum += torch.where(finite, value, torch.zeros_like(value))
        self.finite += finite.float()
        self.first_bad = torch.where(~finite & (self.first_bad < 0), float(step), self.first_bad)
        self.count += 1

    def read(self) -> LossReading:
        """The mean loss since the last read and the first non-finite step; resets the mean."""
        loss_sum, finite, first_bad = self._torch.stack([self.loss_sum, self.finite, self.first_bad]).tolist()
        reading = LossReading(loss_sum / finite if finite else float("nan"), self.count,
                              int(first_bad) if first_bad >= 0 else None)
        self.loss_sum.zero_()
        self.finite.zero_()
        self.count = 0
        return reading
