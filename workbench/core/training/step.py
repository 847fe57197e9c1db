"""One optimizer step: clip and step (non-finite gradients never reach the weights), the steps' losses read
off the device in one read, the throughput, and out of memory said as what to try."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from workbench.core.base.errors import TrainingError, is_out_of_memory

READ_EVERY_ON_DEVICE = 10  # steps between host reads of the loss on an accelerator (read_interval)


class Throughput:
    """Sentences per second over the last few steps."""

    def __init__(self, window: int = 20):
        self.marks: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def add(self, now: float, sentences: int) -> float:
        total = (self.marks[-1][1] if self.marks else 0) + sentences
        self.marks.append((now, total))
        if len(self.marks) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


@contextmanager
def out_of_memory_as(message: str) -> Iterator[None]:
    """Out of memory on any device (torch.OutOfMemoryError, or the CPU allocator's RuntimeError:
    core/errors.py) becomes a TrainingError saying MESSAGE; any other error goes through as it is."""
    try:
        yield
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        raise TrainingError(message) from None


@dataclass
class PendingStep:
    """A step taken whose loss and gradient norm are still on the device."""

    sentences: int
    loss: Any  # a 0-d tensor
    grad_norm: Any  # a 0-d tensor, or None where unknown
    shared_loss: float | None  # several processes: their mean loss, already read (ranks.agree_on_step)
    clock: float  # perf_counter when the step was launched
    lr: float


def read_interval(device_type: str) -> int:
    """How many steps go between host reads of the loss and gradient norm on DEVICE_TYPE.

    A CPU has nothing to wait for: every step. On an accelerator each read waits for the device
    to finish its queued work, so the host reads every READ_EVERY_ON_DEVICE steps (the live
    chart still gets every step's loss, a few steps late); the non-finite check stays on the
    device in between (clip_and_step)."""
    return 1 if device_type == "cpu" else READ_EVERY_ON_DEVICE


def read_steps(pending: list[PendingStep]) -> list[tuple[float, float | None]]:
    """The PENDING steps' losses and gradient norms as numbers, in one read from the device."""
    import torch

    parts = []
    for taken in pending:
        if taken.shared_loss is None:
            parts.append(taken.loss.float().reshape(()))
        if taken.grad_norm is not None:
            parts.append(torch.as_tensor(taken.grad_norm).float().reshape(()))
    if parts:
        device = parts[0].device
        numbers = iter(torch.stack([t.to(device) for t in parts]).tolist())
    else:
        numbers = iter([])
    read = []
    for taken in pending:
        loss_value = taken.shared_loss if taken.shared_loss is not None else next(numbers)
        read.append((loss_value, None if taken.grad_norm is None else next(numbers)))
    return read


def total_norm(grads: list[Any]) -> Any:
    """The 2-norm of all GRADS together, as a tensor on their device (no host read).

    torch.nn.utils.get_total_norm where torch has it (2.6 and later); the same sum of per-tensor norms
    on older torch, which the dependency floor (torch 2.4) allows."""
    import torch

    if hasattr(torch.nn.utils, "get_total_norm"):
        return torch.nn.utils.get_total_norm(grads)
    if not grads:
        return torch.tensor(0.0)
    norms = [torch.linalg.vector_norm(g.detach(), 2.0) for g in grads]
    return torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]), 2.0)


def clip_and_step(accelerator: Any, optimizer: Any, params: list[Any], max_norm: float, loss: Any = None) -> Any:
    """Clip the gradients' total norm to MAX_NORM, then take the optimizer step, unless the norm
    (or LOSS, when given) is not finite; the norm before clipping, a tensor (None where unknown).

    A non-finite gradient never reaches the weights. The fused AdamW is told on the device
    (`found_inf`, the hook torch's GradScaler uses: the kernel then leaves the weights, its moments
    and its step count as they were), so no step waits for a read from the GPU; the other paths
    check on the host. A gradient scaler (fp16) skips such steps itself and lowers its scale, a
    routine event: its norm is not returned.

    The fused AdamW also applies the clip inside its kernel as a gradient divisor (`grad_scale`),
    saving a pass that rescales every gradient in memory: the same update as clip_grad_norm_
    (grads x min(1, max_norm / (norm + 1e-6))) up to rounding. Anything else (a gradient scaler,
    sharded or DeepSpeed training, another optimizer) clips the usual way."""
    import torch
    from accelerate.utils import DistributedType

    inner = getattr(optimizer, "optimizer", optimizer)
    if accelerator.scaler is not None:
        accelerator.clip_grad_norm_(params, max_norm)
        optimizer.step()
        return None
    if not getattr(inner, "defaults", {}).get("fused") or accelerator.distributed_type not in (
        DistributedType.NO,
        DistributedType.MULTI_GPU,
        DistributedType.MULTI_CPU,
    ):
        norm = accelerator.clip_grad_norm_(params, max_norm)
        finite = norm is None or math.isfinite(float(norm))  # a host read, off the fused path only
        if finite and loss is not None:
            finite = math.isfinite(float(loss.detach()))
        if finite:
            optimizer.step()
        return norm
    norm = total_norm([p.grad for p in params if p.grad is not None])
    inner.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0)
    bad = ~torch.isfinite(norm)
    if loss is not None:
        bad = bad | ~torch.isfinite(loss.detach().to(norm.device))
    inner.found_inf = bad.float()
    try:
        optimizer.step()
    finally:
        del inner.grad_scale, inner.found_inf
    return norm


def nonfinite_message(what: str, value: float, step: int, steps_after: int) -> str:
    """Why a run failed: WHAT (the loss, the gradient norm) became VALUE at STEP. STEPS_AFTER: steps taken after
    it before it was read (an accelerator reads every few steps); the bad step itself was skipped on the device,
    so no weight ever held a non-finite number."""
    if steps_after:
        stopped = (
            f"the step was skipped on the device, and training stopped {steps_after} step(s) later, "
            f"at the next read of the loss"
        )
    else:
        stopped = "training stopped before the step changed the weights"
    return (
        f"{what} became {value} at step {step}; {stopped}. The last good checkpoint and the best "
        f"model are kept; try a lower learning rate"
    )
