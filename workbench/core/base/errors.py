"""Telling one kind of failure from another, whatever raised it."""

from __future__ import annotations

OUT_OF_MEMORY_MARKS = ("DefaultCPUAllocator", "not enough memory", "can't allocate memory", "CUDA out of memory")


def is_out_of_memory(err: BaseException) -> bool:
    """Out of memory on any device: torch.OutOfMemoryError (CUDA, MPS, XPU), or the RuntimeError
    of the CPU allocator ("DefaultCPUAllocator: can't allocate memory: you tried to allocate ...",
    "not enough memory" on Windows) and of older CUDA builds."""
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and any(mark in str(err) for mark in OUT_OF_MEMORY_MARKS)


class TrainingError(Exception):
    """Training cannot start or go on; the message says why and what to do."""

