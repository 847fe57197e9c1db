"""core.system: the Train pane's system line (CPU, RAM, GPU), sampled at most once a second."""

from __future__ import annotations

from workbench.core.base.system import GpuSample, SystemMonitor, SystemSample


def test_samples_at_most_once_per_interval() -> None:
    now = [100.0]
    monitor = SystemMonitor(min_interval=1.0, clock=lambda: now[0])
    first = monitor.sample()
    for _ in range(50):  # a caller asking at any rate gets the same sample within the second
        now[0] += 0.01
        assert monitor.sample() is first
    now[0] += 0.6
    monitor.sample()
    assert monitor.samples_taken == 2


def test_a_sample_says_what_is_known() -> None:
    sample = SystemMonitor().sample()
    assert sample.cpu_percent is not None and 0 <= sample.cpu_percent <= 100  # psutil is installed here
    assert sample.ram_total and 0 < (sample.ram_used or 0) <= sample.ram_total
    assert sample.describe().startswith("CPU ") and "RAM " in sample.describe()


def test_describe_with_a_gpu_and_with_nothing() -> None:
    gpu = GpuSample(0, 97.0, 11 * 2**30, 80 * 2**30)
    assert SystemSample(43.0, 5 * 2**30, 16 * 2**30, [gpu]).describe() == (
        "CPU 43% · RAM 5.0/16.0 GiB · GPU0 97% 11.0/80.0 GiB"
    )
    assert SystemSample().describe() == ""
