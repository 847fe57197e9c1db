"""core.system: the Train pane's system line (CPU, RAM, GPU), sampled at most once a second."""

from __future__ import annotations

import subprocess
import sys

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
        "CPU 43% · RAM 5.0/16.0 GiB · GPU0 97% 11.0/80.0 GiB")
    assert SystemSample().describe() == ""


def test_without_a_gpu_driver_it_is_quiet() -> None:
    """This machine has nvidia-ml-py but no NVIDIA driver: no GPU part, no exception, no output."""
    code = ("from workbench.core.base.system import SystemMonitor\n"
            "s = SystemMonitor().sample()\n"
            "import sys; print(len(s.gpus)); print('textual' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    gpus, textual_loaded = result.stdout.split()
    assert textual_loaded == "False"
    if gpus != "0":  # a machine with a GPU: then the line names it
        assert "GPU0" in SystemMonitor().sample().describe()
