"""What the machine offers a training: a GPU or not, bf16 or not, fused AdamW, the allocator, memory."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any


def cuda_available() -> bool:
    """A CUDA device to train on (WORKBENCH_CPU=1 forces the CPU)."""
    import torch

    return torch.cuda.is_available() and os.environ.get("WORKBENCH_CPU", "") != "1"


def default_device() -> str:
    """Where inference runs: the first GPU when there is one, else the CPU."""
    return "cuda" if cuda_available() else "cpu"


@functools.cache  # the CPU's flags do not change: read once, not at every neighbour query
def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device_type: str) -> str:
    """'bf16' or 'no' for Accelerate: auto picks bf16 on a GPU that has it and on
    CPUs with native bf16 matmuls (AVX-512 BF16 / AMX), else fp32."""
    import torch

    if precision == "fp32":
        return "no"
    if precision == "bf16":
        return "bf16"
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_has_bf16() else "no"


def bf16_autocast(model: Any, device: Any, precision: str = "auto") -> Any:
    """bf16 autocast around the forward of an fp32 MODEL on DEVICE when PRECISION resolves to bf16 there
    (auto: where the hardware multiplies bf16 natively); otherwise a context that does nothing."""
    import contextlib

    import torch

    if next(model.parameters()).dtype != torch.float32 or resolve_precision(precision, device.type) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def fused_adamw_ok(device_type: str) -> bool:
    return device_type in ("cpu", "cuda")


def keep_freed_memory() -> None:
    """Let glibc keep freed blocks under 32 MB for reuse instead of handing them back to the OS.

    Every CPU training step allocates and frees the same activations and bf16 weight copies;
    returned to the OS, each one page-faults back in on the next step (about 10% of a step on
    the 2-core machine; benchmarks/README.md). Process-wide; a no-op off glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)
    except (OSError, AttributeError):
        pass


def device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def device_memory() -> str:
    """Current memory use of the training device, for progress displays."""
    import torch

    if torch.cuda.is_available():
        used = torch.cuda.memory_allocated() / 2**30
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"{used:.1f}/{total:.0f} GiB"
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        return f"peak RSS {rss:.2f} GiB"
    except (ImportError, OSError):
        return ""
