"""Dropout masks on a CPU: torch's bernoulli_ against the workbench's dropout_noise and the variants tried.

    python benchmarks/dropout_mask.py            # one 32 x 13 x 384 bf16 batch of activations, p = 0.1

Prints milliseconds per mask (mean over 400 calls after 20 warm-up calls) at 2 threads and 1 thread:
  native         torch's own: empty_like(x).bernoulli_(1 - p).div_(1 - p), what nn.Dropout does on a CPU
  dropout_noise  workbench.core.training.speed.dropout_noise: two 15-bit uniforms per 32-bit random_() draw
  strided        one draw viewed as two int16 halves, each compared with its own threshold (no & or >>)
  randint16      torch.randint to int16, one generator call per element
  where          strided, with torch.where(keep, scale, 0) instead of .to(dtype).mul_(scale)
and the share of zeros of each, which should be p.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from workbench.core.training.speed import dropout_noise  # noqa: E402

P = 0.1
X = torch.randn(32, 13, 384, dtype=torch.bfloat16)
LOW, HIGH = -32768 + round(P * 65536), round(P * 32768)  # the int16 halves: 16 and 15 uniform bits
SCALE = torch.tensor(1 / (1 - P), dtype=X.dtype)


def native() -> torch.Tensor:
    return torch.empty_like(X).bernoulli_(1 - P).div_(1 - P)


def ours() -> torch.Tensor:
    return dropout_noise(X, P)


def _strided_keep() -> torch.Tensor:
    n = X.numel()
    half = (n + 1) // 2
    halves = torch.empty(half, dtype=torch.int32).random_().view(torch.int16).view(half, 2)
    keep = torch.empty(half, 2, dtype=torch.bool)
    torch.ge(halves[:, 0], LOW, out=keep[:, 0])
    torch.ge(halves[:, 1], HIGH, out=keep[:, 1])
    return keep.view(-1)[:n].view(X.shape)


def strided() -> torch.Tensor:
    return _strided_keep().to(X.dtype).mul_(1 / (1 - P))


def randint16() -> torch.Tensor:
    return (torch.randint(-32768, 32767, X.shape, dtype=torch.int16) >= LOW).to(X.dtype).mul_(1 / (1 - P))


def where() -> torch.Tensor:
    return torch.where(_strided_keep(), SCALE, 0)


def per_call_ms(make: object, calls: int = 400) -> float:
    for _ in range(20):
        make()  # type: ignore[operator]
    started = time.perf_counter()
    for _ in range(calls):
        make()  # type: ignore[operator]
    return (time.perf_counter() - started) / calls * 1e3


def main() -> None:
    makers = {"native": native, "dropout_noise": ours, "strided": strided, "randint16": randint16, "where": where}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        print(f"{threads} thread(s), ms per mask: " + ", ".join(f"{k} {per_call_ms(f):.3f}" for k, f in makers.items()))
    torch.manual_seed(0)
    print("share of zeros: " + ", ".join(f"{k} {(f() == 0).float().mean().item():.4f}" for k, f in makers.items()))


if __name__ == "__main__":
    main()
