"""Telling one kind of failure from another, whatever raised it."""

from __future__ import annotations

# The exit statuses of a workbench process, defined once: the CLI returns them, and a training
# process (the CLI's `train`, a detached launch, a torchrun rank) ends with them.
EXIT_FAILED = 1  # the work itself failed (a training that ended "failed", a run that died)
EXIT_USAGE = 2  # a problem told in one line before or instead of the work (argparse's status for bad flags)
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C or SIGTERM (128 + SIGINT), a checkpoint written first

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
