"""Faults inside a real training: an infinite loss or gradient, out of memory on the CPU and on a
GPU, an unwritable or full disk. Nothing non-finite reaches the weights, checkpoints or the model;
the messages name the step or the batch size to try."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import faults
from helpers.cli import one_error_line

from workbench.cli import main
from workbench.core.base.config import TrainConfig
from workbench.core.base.errors import TrainingError, is_out_of_memory
from workbench.core.base.layout import RunError
from workbench.core.runs.metrics import read_metrics
from workbench.core.training.checkpoint import load_checkpoint
from workbench.core.training.train import train


def forward_with(fault: Any) -> Any:
    """BertForSequenceClassification.forward, with FAULT(model, output, calls) applied to each output."""
    from transformers import BertForSequenceClassification

    original = BertForSequenceClassification.forward
    calls = {"train": 0, "eval": 0}

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["train" if self.training else "eval"] += 1
        return fault(self, original(self, *args, **kwargs), calls)

    return forward


def test_infinite_loss_stops_and_keeps_the_last_good_checkpoint_and_best_model(
    small_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def inf_from_step_6(model: Any, output: Any, calls: dict[str, int]) -> Any:
        if model.training and calls["train"] >= 6:
            output.loss = output.loss * float("inf")
        return output

    monkeypatch.setattr("transformers.BertForSequenceClassification.forward", forward_with(inf_from_step_6))
    run = tmp_path / "run"
    kept: dict[str, bytes] = {}

    def remember(event: dict[str, Any]) -> None:
        if event["kind"] == "checkpoint":
            kept["meta"] = (run / "checkpoint" / "meta.json").read_bytes()
            kept["model"] = (run / "model" / "model.safetensors").read_bytes()

    result = train(small_config, run, on_event=remember)
    assert result.status == "failed" and "loss became inf at step 6" in result.error
    assert "checkpoint and the best model are kept" in result.error
    assert (run / "checkpoint" / "meta.json").read_bytes() == kept["meta"]
    assert (run / "model" / "model.safetensors").read_bytes() == kept["model"]
    assert load_checkpoint(run)[0]["epoch"] == 1
    assert read_metrics(run)[-1]["status"] == "failed"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("train", r"out of memory at batch size 16 \(max length 128\) on cpu.*; try --batch-size 8"),
        ("eval", r"out of memory validating at eval batch size 256 \(max length 128\); try --eval-batch-size 128"),
    ],
)
def test_out_of_memory_names_the_batch_size_and_suggests_a_smaller_one(
    when: str, message: str, small_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(model: Any, output: Any, calls: dict[str, int]) -> Any:
        if (model.training and when == "train" and calls["train"] == 2) or (not model.training and when == "eval"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return output

    monkeypatch.setattr("transformers.BertForSequenceClassification.forward", forward_with(out_of_memory))
    with pytest.raises(TrainingError, match=message):
        train(small_config, tmp_path / "run")
    end = read_metrics(tmp_path / "run")[-1]
    assert end["kind"] == "end" and end["status"] == "failed" and "out of memory" in end["error"]


def test_an_unwritable_run_folder_is_found_before_training(
    tiny_config: TrainConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # root ignores permissions, but not a file where a folder must be
    with pytest.raises(RunError, match="cannot write here"):
        train(tiny_config, blocker / "run")
    assert main(["train", "--runs", str(blocker), "--name", "x", "--model", tiny_config.model]) == 2
    assert "cannot write here" in one_error_line(capsys)


def test_a_full_disk_is_found_before_training(
    tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("workbench.core.base.layout.shutil.disk_usage", lambda _: usage(10**12, 10**12 - 2**20, 2**20))
    with pytest.raises(RunError, match="only 1 MiB free"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "config.json").exists()
    runs = tmp_path / "runs"
    assert main(["train", "--runs", str(runs), "--name", "x", "--model", tiny_config.model]) == 2
    assert "MiB free" in one_error_line(capsys)
    assert not (runs / "x" / "metrics.jsonl").exists()


def tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside a checkpoint's nested dicts and lists."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from tensors(item)


def assert_all_finite(run: Path) -> None:
    from safetensors.torch import load_file

    state = torch.load(run / "checkpoint" / "state.pt", map_location="cpu", weights_only=True)
    bad = [
        i
        for i, t in enumerate(tensors({k: state[k] for k in ("model", "optimizer")}))
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    assert not bad, f"{len(bad)} checkpoint tensors are not finite"
    if (run / "model").is_dir():
        weights = load_file(run / "model" / "model.safetensors")
        bad_names = [k for k, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()]
        assert not bad_names, bad_names


def test_a_non_finite_gradient_never_reaches_the_weights(
    small_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 3's loss is finite, its gradient is not: the step stops (or is skipped) before the
    optimizer touches the weights, and no checkpoint or model holds a non-finite number."""
    monkeypatch.setattr(
        "workbench.core.model.loading.load_model", faults.on_training_model(faults.infinite_gradient_at(3))
    )
    small_config.checkpoint_every = 1  # a checkpoint right after the bad step
    events: list[dict[str, Any]] = []
    result = train(small_config, tmp_path / "run", on_event=events.append)
    losses = [e["loss"] for e in events if e["kind"] == "step"]
    assert all(math.isfinite(x) for x in losses[:3]), losses  # a finite loss: only the gradient is bad
    assert_all_finite(tmp_path / "run")
    said = [str(e.get("error") or e.get("message") or "") for e in events if e["kind"] in ("log", "end")]
    assert any(re.search(r"(?i)gradient", m) and re.search(r"(?i)\b(inf|nan)\b|finite", m) for m in said), said
    assert result.status in ("failed", "done"), result
    if result.status == "failed":
        assert "step 3" in result.error, result.error


@pytest.mark.parametrize("kind", ["fused", "foreach"])
def test_clip_and_step_leaves_the_weights_alone_when_the_gradient_or_loss_is_not_finite(kind: str) -> None:
    """Both optimizer paths: the fused one told on the device (found_inf), the other checked on the host."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    from workbench.core.training.step import clip_and_step

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    accelerator = Accelerator(cpu=True, mixed_precision="no")
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, **{kind: True})
    layer, optimizer = accelerator.prepare(layer, optimizer)
    params = list(layer.parameters())
    before = [p.detach().clone() for p in params]

    def step(loss_scale: float, grad_fault: float | None) -> Any:
        loss = layer(torch.ones(3, 4)).sum() * loss_scale
        loss.backward()
        if grad_fault is not None:
            params[0].grad[0, 0] = grad_fault
        norm = clip_and_step(accelerator, optimizer, params, 1.0, loss.detach())
        optimizer.zero_grad(set_to_none=True)
        return norm

    for loss_scale, grad_fault in ((1.0, math.inf), (1.0, math.nan), (math.inf, None)):
        norm = step(loss_scale, grad_fault)
        assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True)), (loss_scale, grad_fault)
        assert all(float(s["step"]) == 0 for s in optimizer.optimizer.state.values())  # moments untouched too
    assert not math.isfinite(float(norm))
    assert math.isfinite(float(step(1.0, None)))
    assert not any(torch.equal(p, b) for p, b in zip(params, before, strict=True))  # a finite step is taken


def test_is_out_of_memory_knows_what_the_cpu_raises() -> None:
    with pytest.raises(RuntimeError) as raised:
        torch.empty(2**60)  # what the CPU allocator raises: not torch.OutOfMemoryError
    assert not isinstance(raised.value, torch.OutOfMemoryError)
    assert is_out_of_memory(raised.value), str(raised.value)
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8 bytes"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("not enough memory"))


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("train", r"out of memory at batch size 16 \(max length 128\) on cpu.*; try --batch-size 8"),
        ("eval", r"out of memory validating at eval batch size 256 \(max length 128\); try --eval-batch-size 128"),
    ],
)
def test_cpu_out_of_memory_gets_the_same_message_as_torch_out_of_memory(
    when: str, message: str, small_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "workbench.core.model.loading.load_model", faults.on_training_model(faults.cpu_out_of_memory(when))
    )
    with pytest.raises(TrainingError, match=message):
        train(small_config, tmp_path / "run")
    end = read_metrics(tmp_path / "run")[-1]
    assert end["kind"] == "end" and end["status"] == "failed" and "out of memory" in end["error"]
