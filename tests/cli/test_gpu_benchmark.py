"""benchmarks/gpu.py, run on the CPU: the options it gives each arm reach the training, as the run itself says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

GPU_BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def test_gpu_benchmark_options_reach_the_training(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    command = [sys.executable, str(GPU_BENCHMARK), "--quick", "--arms", "workbench,compile", "--backend", "eager"]
    command += ["--precision", "fp32", "--no-peak", "--json", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    arms = json.loads(out.read_text())["arms"]
    for arm in ("workbench", "compile"):
        ran = arms[arm]
        assert ran["mixed_precision"] == "no", arm  # --precision fp32 reached the Accelerator, not autocast
        step = ran["training_step"].split(", ")
        assert step[:2] == ["fp32", "fused AdamW"], arm
        assert "word-embedding table frozen" in step and "last layer at [CLS] only" in step, arm
        assert ran["steps"] == 8 and ran["sentences"] == 256  # --quick: 256 sentences in batches of 32
    # --compile reached train(): it compiled (its own log line), and the compiled step leaves the CPU's eager
    # levers to the compiler; the eager arm has them
    assert arms["workbench"]["compile_s"] is None and arms["compile"]["compile_s"] > 0
    assert {"CPU dropout masks", "CPU attention"} <= set(arms["workbench"]["training_step"].split(", "))
    assert "CPU attention" not in arms["compile"]["training_step"]
