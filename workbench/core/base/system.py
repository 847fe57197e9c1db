"""What the machine is doing: CPU %, RAM and, when there is an NVIDIA GPU, its utilisation and memory.

For progress displays (the TUI's Train pane). Sampling is cheap and rate-limited (at most once
a second, whatever the caller's rate); without psutil, without an NVIDIA driver or without
nvidia-ml-py it says less, quietly, and never raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_INTERVAL_S = 1.0


@dataclass(frozen=True)
class GpuSample:
    index: int
    utilisation: float  # percent
    memory_used: int  # bytes
    memory_total: int  # bytes


@dataclass(frozen=True)
class SystemSample:
    cpu_percent: float | None = None  # of all cores, since the previous sample
    ram_used: int | None = None  # bytes
    ram_total: int | None = None  # bytes
    gpus: list[GpuSample] = field(default_factory=list)

    def describe(self) -> str:
        """`CPU 43% · RAM 5.1/15.6 GiB · GPU0 97% 11.2/80.0 GiB`, with what is known."""
        parts = []
        if self.cpu_percent is not None:
            parts.append(f"CPU {self.cpu_percent:.0f}%")
        if self.ram_used is not None and self.ram_total:
            parts.append(f"RAM {gib(self.ram_used)}/{gib(self.ram_total)} GiB")
        for gpu in self.gpus:
            parts.append(f"GPU{gpu.index} {gpu.utilisation:.0f}% {gib(gpu.memory_used)}/{gib(gpu.memory_total)} GiB")
        return " · ".join(parts)


def gib(count: int) -> str:
    return f"{count / 2**30:.1f}"


class SystemMonitor:
    """Samples the machine at most once every MIN_INTERVAL_S seconds; between samples,
    `sample()` returns the last one. Thread-safe. CLOCK is for tests."""

    def __init__(self, min_interval: float = MIN_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self.samples_taken = 0
        self._lock = threading.Lock()
        self._last: SystemSample | None = None
        self._last_at = 0.0
        self._psutil: Any = _import_psutil()
        self._nvml: Any = None
        self._gpu_handles: list[Any] | None = None  # None: not probed yet

    def sample(self) -> SystemSample:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last_at < self.min_interval:
                return self._last
            self._last, self._last_at = self._take(), now
            self.samples_taken += 1
            return self._last

    def _take(self) -> SystemSample:
        cpu = ram_used = ram_total = None
        if self._psutil is not None:
            try:
                cpu = float(self._psutil.cpu_percent(interval=None))  # since the last call: never blocks
                memory = self._psutil.virtual_memory()
                ram_used, ram_total = int(memory.total - memory.available), int(memory.total)
            except Exception:  # noqa: BLE001 - a system probe must never break a display
                cpu = ram_used = ram_total = None
        return SystemSample(cpu, ram_used, ram_total, self._gpus())

    def _gpus(self) -> list[GpuSample]:
        if self._gpu_handles is None:
            self._gpu_handles = self._probe_gpus()
        samples = []
        for index, handle in enumerate(self._gpu_handles):
            try:
                rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                samples.append(GpuSample(index, float(rates.gpu), int(memory.used), int(memory.total)))
            except Exception:  # noqa: BLE001 - a GPU lost mid-run: say nothing about it
                continue
        return samples

    def _probe_gpus(self) -> list[Any]:
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:  # noqa: BLE001 - no package, no driver, no GPU: all the same here
            return []
        self._nvml = pynvml
        return handles


def _import_psutil() -> Any:
    try:
        import psutil
    except ImportError:
        return None
    try:
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement
    except Exception:  # noqa: BLE001
        return None
    return psutil
