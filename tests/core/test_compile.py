"""`--compile BACKEND`: the training step's model compiled by torch.compile (Accelerate's regional
compilation), probed once before the first step, with eager as the fallback when the compile fails.

The backends here are test doubles of the compiler (a dependency), registered with torch's own backend
registry: one that runs the captured graph as it is and counts its calls, one that fails. What is under
test is the workbench's plumbing: that the setting reaches the model the steps call, that the numbers
stay those of the eager model, and that a failure leaves an eager training that says so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.runs import save_tiny_bert
from workbench.core.base import config as config_module
from workbench.core.base.config import TrainConfig
from workbench.core.runs.metrics import read_metrics
from workbench.core.training.train import train

CALLS = {"graphs": 0, "runs": 0, "runs_without_grad": 0}


def _counting(graph: Any, example_inputs: Any) -> Any:
    import torch

    CALLS["graphs"] += 1

    def run(*args: Any) -> Any:
        CALLS["runs"] += 1
        CALLS["runs_without_grad"] += not torch.is_grad_enabled()  # validation and evaluation run without grad
        return graph.forward(*args)

    return run


def _failing(graph: Any, example_inputs: Any) -> Any:
    raise RuntimeError("this compiler cannot compile anything\nsecond line")


@pytest.fixture(scope="module")
def backends() -> None:
    from torch._dynamo import list_backends, register_backend

    for name, compiler in (("wb_counting", _counting), ("wb_failing", _failing)):
        if name not in list_backends(exclude_tags=()):
            register_backend(name=name)(compiler)


@pytest.fixture
def still_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT without dropout: eager and compiled steps then take the same numbers."""
    return save_tiny_bert(tmp_path_factory.mktemp("still-bert"), seed=0, dropout=0.0)


def _losses(run: Path) -> list[float]:
    return [e["loss"] for e in read_metrics(run) if e["kind"] == "step"]


def _logs(run: Path) -> list[str]:
    return [e["message"] for e in read_metrics(run) if e["kind"] == "log"]


def test_the_compile_setting_is_checked() -> None:
    assert "compile" in TrainConfig(compile="fast").validate()
    assert "compile" not in TrainConfig(compile="inductor").validate()


def test_a_compiled_training_steps_through_the_compiled_graphs_with_the_eager_numbers(
    backends: None, still_bert: Path, tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_module, "COMPILE_BACKENDS", (*config_module.COMPILE_BACKENDS, "wb_counting"))
    config = replace(tiny_config, model=str(still_bert), epochs=1, train_limit=64)  # 4 steps of 16
    eager = train(config, tmp_path / "eager")
    assert eager.status == "done"
    CALLS.update(graphs=0, runs=0, runs_without_grad=0)
    compiled = train(replace(config, compile="wb_counting"), tmp_path / "compiled")
    assert compiled.status == "done"
    assert CALLS["graphs"] >= 1
    # the probe's pass and every one of the 4 steps ran the two encoder layers' compiled graphs (at least);
    # validation and the final evaluation (without grad) ran the eager model
    assert CALLS["runs"] >= 2 * (1 + 4), CALLS
    assert CALLS["runs_without_grad"] == 0, CALLS
    logs = _logs(tmp_path / "compiled")
    assert any(line.startswith("compiling the model (torch.compile, wb_counting,") for line in logs), logs
    assert any(line.startswith("compiled in ") for line in logs), logs
    (step,) = [line for line in logs if line.startswith("each step:")]  # said after the compile, with it
    assert "compiled (wb_counting)" in step and "CPU attention" not in step, step
    # the probe left no gradient behind and the saved model is the plain one
    assert _losses(tmp_path / "compiled") == pytest.approx(_losses(tmp_path / "eager"), abs=1e-6)
    assert compiled.final["holdout_mcc"] == pytest.approx(eager.final["holdout_mcc"], abs=1e-6)
    from safetensors import safe_open

    def keys(run: Path) -> set[str]:
        with safe_open(str(run / "model" / "model.safetensors"), "pt") as f:
            return set(f.keys())

    assert keys(tmp_path / "compiled") == keys(tmp_path / "eager")


def test_a_compile_that_fails_trains_eager_and_says_so(
    backends: None, tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_module, "COMPILE_BACKENDS", (*config_module.COMPILE_BACKENDS, "wb_failing"))
    tiny_config.epochs, tiny_config.train_limit = 1, 64
    train(tiny_config, tmp_path / "eager")
    failed = train(replace(tiny_config, compile="wb_failing"), tmp_path / "fallback")
    assert failed.status == "done"
    logs = _logs(tmp_path / "fallback")
    failures = [line for line in logs if line.startswith("compile failed")]
    assert len(failures) == 1 and "this compiler cannot compile anything" in failures[0], logs
    assert "second line" not in failures[0]
    # the eager step's CPU levers, taken after the failure (on the model inside any wrapper), and said so
    said = {
        run: [line for line in _logs(tmp_path / run) if line.startswith("each step:")] for run in ("eager", "fallback")
    }
    assert said["fallback"] == said["eager"] and "CPU attention" in said["eager"][0], said
    # the failed probe changed nothing: the steps (dropout on) drew what the eager training drew
    assert _losses(tmp_path / "fallback") == pytest.approx(_losses(tmp_path / "eager"), abs=1e-6)


def test_the_probe_leaves_the_random_state_and_no_gradient_behind(backends: None, tiny_model_dir: Path) -> None:
    """The probe's pass draws dropout masks (the tiny BERT's dropout is 0.1); the steps after it must draw what
    they would have drawn without it."""
    import torch
    from accelerate import Accelerator
    from transformers import AutoTokenizer, BertForSequenceClassification

    from workbench.core.training.speed import compile_for_steps

    model = BertForSequenceClassification.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = tokenizer(["The cat sat.", "Sat the cat on the mat."], padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([1, 0])
    torch.manual_seed(7)
    before = torch.get_rng_state()
    lines: list[str] = []
    compiled = compile_for_steps(model, "wb_counting", batch, Accelerator(cpu=True), lines.append)
    assert compiled is not model and lines[-1].startswith("compiled in "), lines
    assert torch.equal(torch.get_rng_state(), before)
    assert all(p.grad is None for p in model.parameters())
    # and the pass did draw: the same forward now changes the state
    compiled(**batch).loss.backward()
    assert not torch.equal(torch.get_rng_state(), before)


def test_the_compiler_error_named_is_the_innermost_once_even_in_a_cycle() -> None:
    from workbench.core.training.speed import compiler_error

    inner = ValueError("no C++ compiler\ndetails")
    outer = RuntimeError("backend='inductor' raised:")
    outer.__cause__ = inner
    assert compiler_error(outer) == "ValueError: no C++ compiler"
    looped = RuntimeError("loop")
    looped.__cause__ = looped
    assert compiler_error(looped) == "RuntimeError: loop"
