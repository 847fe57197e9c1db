"""Reliability, second pass (issue 12): faults that used to lose work, hang, or pass untested.

Each test injects a real fault: SIGKILL through the WORKBENCH_FAULT hook, an infinite
gradient flowing back through autograd into the real optimizer step, what the CPU
allocator really raises when memory runs out, a failure on one of two torchrun processes,
a hub that refuses connections or never answers."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faults
import pytest
import torch

from workbench.cli import main
from workbench.core.base.config import TrainConfig, project_data_dir
from workbench.core.base.durable import existing_dir, replace_dir_atomic, write_json_atomic
from workbench.core.base.errors import TrainingError, is_out_of_memory
from workbench.core.runs.metrics import MetricsWriter, read_metrics
from workbench.core.runs.status import run_info
from workbench.core.training.train import train

TESTS = Path(__file__).resolve().parent
TORCHRUN = Path(sys.executable).parent / "torchrun"


@pytest.fixture(scope="module")
def data150(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 CoLA sentences: 135 to train on, 15 to validate; the whole file is the holdout."""
    path = tmp_path_factory.mktemp("data150") / "cola150.tsv"
    lines = (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()[:150]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli_args(model: Path, data: Path, runs: Path, name: str, *extra: str) -> list[str]:
    """A 2-epoch training of 4 steps an epoch (64 sentences, batch 16), checkpoints per epoch."""
    return ["train", "--model", str(model), "--data", str(data), "--runs", str(runs), "--name", name,
            "--epochs", "2", "--batch-size", "16", "--train-limit", "64", "--precision", "fp32",
            "--learning-rate", "1e-3", "--eval-batch-size", "256", *extra]


def run_cli(args: list[str], fault: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WORKBENCH_FAULT": fault}
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def outcome(run: Path) -> tuple[dict[int, float], dict[int, dict[str, float]], dict[str, Any]]:
    """Loss per step, metrics per epoch (the last record of each: a resume may repeat some), the last event."""
    events = read_metrics(run)
    losses = {e["step"]: e["loss"] for e in events if e["kind"] == "step"}
    epochs = {e["epoch"]: {k: e[k] for k in ("train_loss", "val_loss", "val_accuracy", "val_mcc")}
              for e in events if e["kind"] == "epoch"}
    return losses, epochs, events[-1]


def assert_same_outcome(run: Path, reference: Path, steps: int = 8, abs_tol: float = 1e-5) -> None:
    losses, epochs, end = outcome(run)
    ref_losses, ref_epochs, ref_end = outcome(reference)
    assert sorted(losses) == sorted(ref_losses) == list(range(1, steps + 1))
    assert [losses[s] for s in sorted(losses)] == pytest.approx([ref_losses[s] for s in sorted(losses)],
                                                                abs=abs_tol)
    assert sorted(epochs) == sorted(ref_epochs) == [1, 2]
    for number in (1, 2):
        assert epochs[number] == pytest.approx(ref_epochs[number], abs=abs_tol)
    assert end["status"] == ref_end["status"] == "done"
    assert end["holdout_mcc"] == pytest.approx(ref_end["holdout_mcc"], abs=abs_tol)


@pytest.fixture(scope="module")
def whole_run(tiny_model_dir: Path, data150: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run that interrupted ones must end up equal to."""
    runs = tmp_path_factory.mktemp("whole")
    assert main(cli_args(tiny_model_dir, data150, runs, "whole")) == 0
    return runs / "whole"


# ---------------------------------------------------------------- item 1: killed before the first checkpoint

def test_a_run_killed_before_its_first_checkpoint_restarts_from_step_0(
        whole_run: Path, tiny_model_dir: Path, data150: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    run = runs / "early"
    killed = run_cli(cli_args(tiny_model_dir, data150, runs, "early"), fault="swap:model@1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # end of epoch 1, while its best model moves in: 4 steps done, no checkpoint yet
    assert existing_dir(run / "checkpoint", "meta.json") is None and (run / "config.json").is_file()
    assert [e["step"] for e in read_metrics(run) if e["kind"] == "step"] == [1, 2, 3, 4]

    assert main(["train", "--resume", "early", "--runs", str(runs)]) == 0
    said = capsys.readouterr()
    assert re.search(r"(?i)no checkpoint.*step 0", said.out + said.err), said.out + said.err
    assert run_info(run).status == "done"
    assert_same_outcome(run, whole_run)  # the saved config.json, from step 0: the same run


# ---------------------------------------------------------------- item 2: killed during the final evaluation

def test_a_run_killed_in_its_final_evaluation_resumes_and_finishes_it(
        whole_run: Path, tiny_model_dir: Path, data150: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = runs / "late"
    killed = run_cli(cli_args(tiny_model_dir, data150, runs, "late"), fault="final-eval")
    assert killed.returncode == -signal.SIGKILL, "no fault point 'final-eval' in the final evaluation"
    assert run_info(run).status == "failed"
    trained = [e for e in read_metrics(run) if e["kind"] == "step"]

    assert main(["train", "--resume", "late", "--runs", str(runs)]) == 0
    report = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    assert {"in_domain_dev", "holdout"} <= set(report)
    assert (run / "predictions.tsv").is_file()
    info = run_info(run)
    assert info.status == "done" and info.holdout_mcc is not None
    assert [e for e in read_metrics(run) if e["kind"] == "step"] == trained  # evaluated, not trained again
    assert_same_outcome(run, whole_run)
    # calibrated before the kill, not again after it (a second pass would record a threshold of 0.5)
    whole_report = json.loads((whole_run / "eval.json").read_text(encoding="utf-8"))
    assert report["calibration"] == whole_report["calibration"]
    assert json.loads((run / "checkpoint" / "meta.json").read_text())["evaluated"] is True


def test_resuming_a_finished_run_is_refused_and_leaves_it_done(whole_run: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Found with item 2: the refusal used to append a 'failed' end, so the run listed as failed."""
    run = tmp_path / "runs" / "done"
    shutil.copytree(whole_run, run)
    before = (run / "metrics.jsonl").read_bytes()
    assert main(["train", "--resume", "done", "--runs", str(tmp_path / "runs")]) == 2
    assert "finished" in capsys.readouterr().err
    assert run_info(run).status == "done"
    assert (run / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("status", ["done", "stopped"])
def test_a_run_whose_checkpoint_was_deleted_is_not_trained_again(
        status: str, whole_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep deletes its trials' checkpoints (done or pruned): a resume has nothing to start from,
    and must not take them for runs killed before their first checkpoint."""
    run = tmp_path / "runs" / "swept"
    shutil.copytree(whole_run, run)
    shutil.rmtree(run / "checkpoint")
    if status == "stopped":  # cut after epoch 1 and its checkpoint, then stopped (as a pruned trial)
        events = read_metrics(run)
        cut = next(i for i, e in enumerate(events) if e["kind"] == "checkpoint")
        lines = [json.dumps(e) for e in events[:cut + 1]] + [json.dumps({"kind": "end", "time": "", "status": status})]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = (run / "metrics.jsonl").read_bytes()
    assert main(["train", "--resume", "swept", "--runs", str(tmp_path / "runs")]) == 2
    said = capsys.readouterr().err
    assert ("finished" if status == "done" else "no checkpoint to resume from") in said, said
    assert (run / "metrics.jsonl").read_bytes() == before


def test_calibrating_a_calibrated_model_again_changes_none_of_its_decisions(config150: TrainConfig,
                                                                              tmp_path: Path) -> None:
    """A run killed after the calibration was folded into model/ but before its checkpoint recorded
    it calibrates again on resume: a model that carries a calibration keeps it, bit for bit."""
    from workbench.core.evaluation.calibration import calibrate_run
    from workbench.core.evaluation.threshold import final_linear, model_threshold
    from workbench.core.model.loading import load_model

    config150.epochs, config150.calibrate_threshold = 1, False
    run = tmp_path / "run"
    assert train(config150, run).status == "done"
    first = calibrate_run(run, config150, enabled=True)
    assert first is not None and abs(first.threshold - 0.5) > 0.01, first  # a threshold that moves decisions
    once = load_model(str(run / "model"))
    second = calibrate_run(run, config150, enabled=True)
    assert second is not None and second.threshold == first.threshold
    assert second.temperature == first.temperature
    assert second.mcc_at_threshold == pytest.approx(first.mcc_at_threshold)
    twice = load_model(str(run / "model"))
    assert torch.equal(final_linear(twice).bias, final_linear(once).bias)
    assert torch.equal(final_linear(twice).weight, final_linear(once).weight)
    assert model_threshold(twice) == pytest.approx(first.threshold, abs=1e-9)


# ---------------------------------------------------------------- item 3: non-finite gradients

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
    bad = [i for i, t in enumerate(tensors({k: state[k] for k in ("model", "optimizer")}))
           if t.is_floating_point() and not torch.isfinite(t).all()]
    assert not bad, f"{len(bad)} checkpoint tensors are not finite"
    if (run / "model").is_dir():
        weights = load_file(run / "model" / "model.safetensors")
        bad_names = [k for k, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()]
        assert not bad_names, bad_names


@pytest.fixture
def config150(tiny_model_dir: Path, data150: Path) -> TrainConfig:
    return TrainConfig(model=str(tiny_model_dir), data=str(data150), epochs=2, batch_size=16, train_limit=64,
                       learning_rate=1e-3, precision="fp32", eval_batch_size=256)


def test_a_non_finite_gradient_never_reaches_the_weights(config150: TrainConfig, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 3's loss is finite, its gradient is not: the step stops (or is skipped) before the
    optimizer touches the weights, and no checkpoint or model holds a non-finite number."""
    monkeypatch.setattr("workbench.core.model.loading.load_model",
                        faults.on_training_model(faults.infinite_gradient_at(3)))
    config150.checkpoint_every = 1  # a checkpoint right after the bad step
    events: list[dict[str, Any]] = []
    result = train(config150, tmp_path / "run", on_event=events.append)
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

    from workbench.core.training.train import clip_and_step

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


def test_weights_that_are_not_finite_are_never_saved(tiny_model_dir: Path, tmp_path: Path) -> None:
    from workbench.core.model.loading import load_model, load_tokenizer
    from workbench.core.training.checkpoint import CheckpointError, save_checkpoint, save_model

    model, tokenizer = load_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    save_checkpoint(tmp_path, model, optimizer, scheduler, {"step": 1})
    save_model(tmp_path, model, tokenizer)
    kept = {name: (tmp_path / name).read_bytes() for name in ("checkpoint/state.pt", "model/model.safetensors")}
    with torch.no_grad():
        model.classifier.weight[1, 3] = math.nan
    with pytest.raises(CheckpointError, match=r"NaN or infinity \(first: classifier.weight\)"):
        save_checkpoint(tmp_path, model, optimizer, scheduler, {"step": 2})
    with pytest.raises(CheckpointError, match="classifier.weight"):
        save_model(tmp_path, model, tokenizer)
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept


# ---------------------------------------------------------------- item 5: out of memory on the CPU

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
        when: str, message: str, config150: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workbench.core.model.loading.load_model",
                        faults.on_training_model(faults.cpu_out_of_memory(when)))
    with pytest.raises(TrainingError, match=message):
        train(config150, tmp_path / "run")
    end = read_metrics(tmp_path / "run")[-1]
    assert end["kind"] == "end" and end["status"] == "failed" and "out of memory" in end["error"]


# ---------------------------------------------------------------- item 6: two processes (torchrun, gloo)

needs_torchrun = pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def torchrun(out: Path, mode: str, cli: list[str], fault: str = "") -> subprocess.Popen[str]:
    """2 CPU processes running the real CLI under tests/ddp_driver.py (per-rank records in OUT)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WORKBENCH_FAULT": fault, "WORKBENCH_CPU": "1"}
    return subprocess.Popen([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(free_port()),
                             str(TESTS / "ddp_driver.py"), str(out), mode, "--", *cli],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ddp_args(model: Path, data: Path, runs: Path, name: str) -> list[str]:
    """2 processes x 4 steps of 16 an epoch (128 sentences), 2 epochs, a checkpoint every step."""
    args = cli_args(model, data, runs, name, "--checkpoint-every", "1")
    args[args.index("--train-limit") + 1] = "128"
    return args


def finished(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"still running after {timeout} s:\n{output[-3000:]}") from None
    return output


@pytest.fixture(scope="module")
def ddp_run(tiny_model_dir: Path, data150: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted 2-process run: its folder, its per-rank records, its output."""
    if not TORCHRUN.is_file():
        pytest.skip("torchrun not installed")
    base = tmp_path_factory.mktemp("ddp")
    proc = torchrun(base / "out", "plain", ddp_args(tiny_model_dir, data150, base / "runs", "plain"))
    output = finished(proc)
    assert proc.returncode == 0, output[-3000:]
    return {"run": base / "runs" / "plain", "out": base / "out", "output": output}


def rank_losses(out: Path, rank: int) -> list[float]:
    return list(json.loads((out / f"rank{rank}.json").read_text())["losses"])


@needs_torchrun
def test_ddp_parameters_are_the_same_on_both_ranks_and_differ_without_gradient_sync(
        ddp_run: dict[str, Any], tiny_model_dir: Path, data150: Path, tmp_path: Path) -> None:
    synced = [torch.load(ddp_run["out"] / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert synced[0].keys() == synced[1].keys()
    assert all(torch.equal(synced[0][k], synced[1][k]) for k in synced[0]), "ranks diverged"

    proc = torchrun(tmp_path / "out", "nosync", ddp_args(tiny_model_dir, data150, tmp_path / "runs", "nosync"))
    output = finished(proc)
    assert proc.returncode == 0, output[-3000:]
    alone = [torch.load(tmp_path / "out" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert not all(torch.equal(alone[0][k], alone[1][k]) for k in alone[0])  # this check can fail
    assert not all(torch.equal(alone[0][k], synced[0][k]) for k in alone[0])


@needs_torchrun
def test_ddp_only_the_main_process_prints(ddp_run: dict[str, Any]) -> None:
    output = ddp_run["output"]
    for line in ("run: ", "training ", "epoch 1: train loss", "epoch 2: train loss", "best epoch ", "model: ",
                 "holdout (out_of_domain_dev) MCC"):
        assert output.count(line) == 1, (line, output[-3000:])


@needs_torchrun
def test_ddp_train_loss_is_the_mean_over_ranks(ddp_run: dict[str, Any]) -> None:
    per_rank = [rank_losses(ddp_run["out"], r) for r in (0, 1)]
    assert len(per_rank[0]) == len(per_rank[1]) == 8
    epochs = [e for e in read_metrics(ddp_run["run"]) if e["kind"] == "epoch"]
    for epoch in epochs:
        first = (epoch["epoch"] - 1) * 4
        both = per_rank[0][first:first + 4] + per_rank[1][first:first + 4]
        assert epoch["train_loss"] == pytest.approx(sum(both) / len(both), abs=1e-6)


@needs_torchrun
def test_ddp_resumed_run_equals_an_uninterrupted_one(ddp_run: dict[str, Any], tiny_model_dir: Path,
                                                     data150: Path, tmp_path: Path) -> None:
    """Each rank draws its own dropout masks: a resume must restore every rank's RNG, not rank 0's on all."""
    runs = tmp_path / "runs"
    proc = torchrun(tmp_path / "killed", "plain", ddp_args(tiny_model_dir, data150, runs, "resumed"),
                    fault="checkpoint:write@3")  # rank 0 dies writing step 3's checkpoint
    output = finished(proc)
    assert proc.returncode != 0 and "SIGKILL" in output, output[-3000:]
    proc = torchrun(tmp_path / "resumed", "plain", ["train", "--resume", "resumed", "--runs", str(runs)])
    output = finished(proc)
    assert proc.returncode == 0, output[-3000:]
    starts = [e for e in read_metrics(runs / "resumed") if e["kind"] == "start"]
    assert [s["resumed_at_step"] for s in starts] == [None, 2]
    assert_same_outcome(runs / "resumed", ddp_run["run"], abs_tol=1e-6)


@needs_torchrun
def test_ddp_a_refusal_by_the_main_process_stops_the_others_too(ddp_run: dict[str, Any], tmp_path: Path) -> None:
    """The main process alone checks the run folder; the others must not wait for it for ever."""
    runs = tmp_path / "runs"
    shutil.copytree(ddp_run["run"], runs / "plain")
    before = (runs / "plain" / "metrics.jsonl").read_bytes()
    started = time.time()
    proc = torchrun(tmp_path / "out", "plain", ["train", "--resume", "plain", "--runs", str(runs)])
    output = finished(proc, timeout=120)
    assert proc.returncode != 0 and time.time() - started < 120
    assert output.count("this run has finished; nothing to resume") == 2, output[-3000:]  # each says why
    assert "process 0 failed: " in output
    assert (runs / "plain" / "metrics.jsonl").read_bytes() == before


@needs_torchrun
def test_ddp_a_stop_request_stops_every_rank_at_the_same_step(tiny_model_dir: Path, data150: Path,
                                                               tmp_path: Path) -> None:
    """The stop request rides on the step's agreement (no collective of its own each step): rank 0 sees
    the request during step 3's forward, and no rank takes step 3."""
    runs = tmp_path / "runs"
    proc = torchrun(tmp_path / "out", "stop-3", ddp_args(tiny_model_dir, data150, runs, "stopped"))
    output = finished(proc)
    # the first rank to finish exits 130 (stopped) and torchrun ends the other; neither hung in a collective
    assert re.search(r"exitcode: 130\) local_rank: [01]", output) and "checkpoint saved" in output, output[-3000:]
    for rank in (0, 1):
        if (tmp_path / "out" / f"rank{rank}.json").exists():  # not written by a rank torchrun ended first
            assert len(rank_losses(tmp_path / "out", rank)) == 3  # 3 forwards, the 3rd not stepped
    events = read_metrics(runs / "stopped")
    assert [e["step"] for e in events if e["kind"] == "step"] == [1, 2]
    end = [e for e in events if e["kind"] == "end"]
    assert end and end[-1]["status"] == "stopped" and end[-1]["step"] == 2, end
    assert json.loads((runs / "stopped" / "checkpoint" / "meta.json").read_text())["step"] == 2


def test_each_process_restores_its_own_random_state_and_old_checkpoints_still_load() -> None:
    from workbench.core.training.checkpoint import rank_rng_state, rng_state, rng_states, set_rng_state

    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(rng_state())
    assert rank_rng_state(states, 1) is states[1] and rank_rng_state(states, 0) is states[0]
    assert rank_rng_state(states, 5) is states[0]  # more processes than when it was saved
    assert rank_rng_state(states[1], 0) is states[1]  # a checkpoint from before: one state for all
    set_rng_state(rank_rng_state(states, 1))
    drawn = torch.rand(3)
    torch.manual_seed(2)
    assert torch.equal(drawn, torch.rand(3))
    assert len(rng_states(1)) == 1  # one process: its own state, in a list


@needs_torchrun
@pytest.mark.parametrize(("mode", "message"), [
    ("fail-exception", "injected failure on rank 1"),
    ("fail-nan", "loss became inf"),
    ("fail-oom", "out of memory at batch size 16"),
    ("fail-backward", "process 1 failed: RuntimeError: injected failure on rank 1 in backward"),
])
def test_ddp_a_failure_on_one_rank_stops_every_rank_with_its_message(
        mode: str, message: str, tiny_model_dir: Path, data150: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    out = tmp_path / "out"
    proc = torchrun(out, mode, ddp_args(tiny_model_dir, data150, runs, "failing"))
    deadline = time.time() + 300
    while not (out / "fault_time").is_file():
        assert proc.poll() is None and time.time() < deadline, finished(proc)[-3000:]
        time.sleep(0.1)
    fault_time = float((out / "fault_time").read_text() or time.time())
    output = finished(proc, timeout=max(1.0, fault_time + 30 - time.time()))
    assert time.time() - fault_time < 30
    assert proc.returncode != 0
    end = read_metrics(runs / "failing")[-1]
    assert end["kind"] == "end" and end["status"] == "failed", end
    assert message in end["error"], end["error"]  # the failing rank's own words, not a broken connection
    assert message in output


# ---------------------------------------------------------------- item 8: the hub unreachable

@pytest.fixture
def dead_hub(request: pytest.FixtureRequest) -> Iterator[str]:
    """An HF_ENDPOINT that refuses connections, or that accepts them and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    if request.param == "refused":
        server.close()
    else:
        server.listen(16)  # the kernel completes each handshake; nobody ever reads or answers
    yield f"http://127.0.0.1:{port}"
    server.close()


def cli_offline(args: list[str], endpoint: str, hf_home: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), PYTHONUNBUFFERED="1")
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "workbench.cli", *args], env=env, capture_output=True,
                                text=True, timeout=60)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"still waiting for the hub after 60 s: {str(err.stderr)[-1500:]}") from None
    return result, time.monotonic() - started


@pytest.mark.parametrize("dead_hub", ["refused", "silent"], indirect=True)
def test_an_unreachable_hub_fails_at_once_with_one_line(dead_hub: str, tmp_path: Path) -> None:
    """The hub costs at most a few seconds on top of the command's own start (imports, data check:
    about 4 s on 2 quiet cores), whose time the same command failing on a local folder measures."""
    def train_with(model: str, name: str) -> tuple[subprocess.CompletedProcess[str], float]:
        return cli_offline(["train", "--model", model, "--runs", str(tmp_path / "runs"), "--name", name],
                           dead_hub, tmp_path / "hf")

    _, start_seconds = train_with(str(tmp_path / "no-such-model"), "local")
    result, seconds = train_with("bert-base-uncased", "hub")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: bert-base-uncased: ") and "unreachable" in lines[0]
    assert "--model PATH" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert seconds - start_seconds < 6, f"{seconds:.1f} s, {start_seconds:.1f} s of them to start"


@pytest.mark.parametrize("dead_hub", ["silent"], indirect=True)
def test_a_cached_hub_model_loads_while_the_hub_is_unreachable(dead_hub: str, tiny_model_dir: Path,
                                                               tmp_path: Path) -> None:
    """The model in the local Hugging Face cache (its on-disk layout) is used without a request."""
    snapshot = tmp_path / "hf" / "hub" / "models--tiny-org--tiny-bert" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    result, _ = cli_offline(["model", "show", "--model", "tiny-org/tiny-bert"], dead_hub, tmp_path / "hf")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hidden size        32" in result.stdout


# ---------------------------------------------------------------- item 4: durability

class SyncLog:
    """What reached the disk and in which order: every fsync (by path) and rename, as the OS saw them.

    A spy: the real os.fsync and os.rename/os.replace still run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.events: list[tuple[str, str]] = []
        real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

        def fsync(fd: int) -> None:
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            real_fsync(fd)

        def rename(src: Any, dst: Any) -> None:
            self.events.append(("rename", str(dst)))
            real_rename(src, dst)

        def replace(src: Any, dst: Any) -> None:
            self.events.append(("rename", str(dst)))
            real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "rename", rename)
        monkeypatch.setattr(os, "replace", replace)

    def synced(self, path: Path) -> list[int]:
        return [i for i, (kind, what) in enumerate(self.events) if kind == "fsync" and what == str(path)]

    def renamed(self, path: Path) -> list[int]:
        return [i for i, (kind, what) in enumerate(self.events) if kind == "rename" and what == str(path)]


linux_only = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name synced files")


@linux_only
def test_replacing_a_folder_syncs_every_file_before_and_the_parent_after_the_renames(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path.resolve()
    (base / "checkpoint").mkdir()
    (base / "checkpoint" / "meta.json").write_text("{}")
    staged = base / ".checkpoint.tmp"
    (staged / "sub").mkdir(parents=True)
    for name in ("state.pt", "meta.json", "sub/extra.bin"):
        (staged / name).write_bytes(b"x" * 10)
    log = SyncLog(monkeypatch)
    replace_dir_atomic(staged, base / "checkpoint")
    swap = log.renamed(base / "checkpoint")
    assert len(swap) == 1, log.events
    for name in ("state.pt", "meta.json", "sub/extra.bin"):  # synced where they were written
        synced = log.synced(staged / name)
        assert synced and synced[0] < swap[0], (name, log.events)
    for folder in (staged, staged / "sub"):
        assert log.synced(folder) and log.synced(folder)[0] < swap[0], (folder, log.events)
    parent = log.synced(base)
    assert parent and parent[0] < swap[0] and parent[-1] > swap[0], log.events


@linux_only
def test_json_records_and_config_are_synced_and_so_is_their_folder(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path.resolve()
    log = SyncLog(monkeypatch)
    write_json_atomic(base / "eval.json", {"holdout": {"mcc": 0.1}})
    moved = log.renamed(base / "eval.json")
    assert moved and log.synced(base / ".eval.json.tmp")[0] < moved[0]
    assert log.synced(base) and log.synced(base)[-1] > moved[0], log.events

    log.events.clear()
    TrainConfig().save(base / "config.json")
    moved = log.renamed(base / "config.json")
    assert moved and log.synced(base / ".config.json.tmp")[0] < moved[0], log.events
    assert log.synced(base) and log.synced(base)[-1] > moved[0], log.events
    assert TrainConfig.load(base / "config.json") == TrainConfig()


@linux_only
def test_metrics_are_synced_at_checkpoints_epochs_and_the_end_not_every_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path.resolve() / "metrics.jsonl"
    log = SyncLog(monkeypatch)
    writer = MetricsWriter(path)
    counts = []
    for kind in ("start", "step", "step", "checkpoint", "step", "epoch", "end"):
        writer.write({"kind": kind})
        counts.append(len(log.synced(path)))
    writer.close()
    assert counts == [0, 0, 0, 1, 1, 2, 3]
    assert log.synced(path.parent)  # the file's name in its folder, once
    assert len(read_metrics(path.parent)) == 7
