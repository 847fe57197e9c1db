"""The machine's matmul peak at the embedded model's shapes, fp32 and bf16 (where the CPU or GPU has it).

    python benchmarks/matmul_peak.py [--tokens 384] [--threads N]

A training step of the 6-layer, 384-wide encoder at batch 32 runs matmuls of (tokens x 384) by
(384 x 384) [Q, K, V, output], (384 x 1536) and (1536 x 384) [feed-forward], and their backward
transposes, with tokens = 32 x the batch's length (about 12 on average when batches are grouped by
length). The peak is the FLOP-weighted rate over those shapes (what the model could reach if it did
nothing but matmuls), the best of several repeats; the best single shape is printed too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable


def model_shapes(tokens: int, hidden: int = 384, ffn: int = 1536) -> list[tuple[int, int, int]]:
    """(m, k, n) of the forward and backward matmuls of one encoder layer."""
    forward = [(tokens, hidden, hidden)] * 4 + [(tokens, hidden, ffn), (tokens, ffn, hidden)]
    shapes = []
    for m, k, n in forward:
        shapes += [(m, k, n), (m, n, k), (k, m, n)]  # forward, grad of the input, grad of the weight
    return shapes


def best_seconds(
    op: Callable[[], object], seconds: float = 0.3, runs: int = 5, warmup: int = 3, sync: Callable[[], object] = bool
) -> float:
    """Seconds one OP takes: the best of RUNS timed runs of about SECONDS/RUNS each (SYNC waits for a GPU)."""
    for _ in range(warmup):
        op()
    sync()
    start = time.perf_counter()
    reps = 0
    while time.perf_counter() - start < 0.05:
        op()
        reps += 1
    sync()
    reps = max(1, int(reps * seconds / runs / 0.05))
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(reps):
            op()
        sync()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def rate(m: int, k: int, n: int, dtype: object, device: str, seconds: float = 0.3) -> float:
    """GFLOP/s of (m x k) @ (k x n), the best of 5 timed runs of about SECONDS/5 each."""
    import torch

    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device == "cuda" else bool
    return 2 * m * k * n / best_seconds(lambda: a @ b, seconds, sync=sync) / 1e9


def bf16_available(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    from workbench.core.base.hardware import cpu_has_bf16

    return cpu_has_bf16()


def measure_peak(
    tokens: int = 384, hidden: int = 384, ffn: int = 1536, device: str = "", verbose: bool = False
) -> dict[str, float]:
    """FLOP-weighted GFLOP/s over the model's matmul shapes, per dtype ('fp32', 'bf16')."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtypes = {"fp32": torch.float32}
    if bf16_available(device):
        dtypes["bf16"] = torch.bfloat16
    out: dict[str, float] = {}
    for name, dtype in dtypes.items():
        flops = seconds = 0.0
        best_shape = (0.0, (0, 0, 0))
        for m, k, n in sorted(set(model_shapes(tokens, hidden, ffn))):
            g = rate(m, k, n, dtype, device)
            work = 2 * m * k * n * model_shapes(tokens, hidden, ffn).count((m, k, n))
            flops += work
            seconds += work / (g * 1e9)
            best_shape = max(best_shape, (g, (m, k, n)))
            if verbose:
                print(f"  {name} {m:>5}x{k:>5}x{n:>5}: {g:7.1f} GFLOP/s")
        out[name] = flops / seconds / 1e9
        out[f"{name}_best_shape"] = best_shape[0]
    return out


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=384, help="tokens per batch (32 sentences x ~12)")
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--ffn", type=int, default=1536)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_common as bc

    print(f"machine: {bc.machine()}; load average {bc.loadavg():.2f}")
    for tokens in sorted({args.tokens, 256, 1024}):
        peak = measure_peak(tokens, args.hidden, args.ffn, verbose=tokens == args.tokens)
        line = ", ".join(f"{k} {v:.0f}" for k, v in peak.items())
        print(f"tokens {tokens:>5}: GFLOP/s {line}")


if __name__ == "__main__":
    main()
