"""Training in 2 processes (torchrun, gloo on the CPU): the ranks stay in step, only the main process
writes and prints, a resumed 2-process run equals an uninterrupted one, a stop request or a failure on
one rank stops every rank (with the failing rank's own words), and the same effective batch in one
process reaches the same quality. Each rank runs the real CLI under tests/helpers/ddp_driver.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import warm
from helpers.cli import train_args
from helpers.runs import assert_same_outcome

from workbench.cli import main
from workbench.core.runs.metrics import read_metrics

DRIVER = Path(__file__).resolve().parents[1] / "helpers" / "ddp_driver.py"
TORCHRUN = Path(sys.executable).parent / "torchrun"


Launched = subprocess.Popen[str] | warm.WarmProcess
needs_torchrun = pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def torchrun(out: Path, mode: str, cli: list[str], fault: str = "", cold: bool = False) -> Launched:
    """2 CPU processes running the real CLI under tests/helpers/ddp_driver.py (per-rank records in OUT):
    by the real torchrun when COLD, else by torchrun's launcher in a warm process (helpers.warm)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WORKBENCH_FAULT": fault, "WORKBENCH_CPU": "1"}
    argv = ["--nproc_per_node", "2", "--master_port", str(free_port()), str(DRIVER), str(out), mode, "--", *cli]
    if cold:
        return subprocess.Popen(
            [str(TORCHRUN), *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    return warm.torchrun(argv, env)


def ddp_args(model: Path, data: Path, runs: Path, name: str) -> list[str]:
    """2 processes x 4 steps of 16 an epoch (128 sentences), 2 epochs, a checkpoint every step."""
    args = train_args(model, data, runs, name, "--checkpoint-every", "1")
    args[args.index("--train-limit") + 1] = "128"
    return args


def finished(proc: Launched, timeout: float = 300) -> str:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"still running after {timeout} s:\n{output[-3000:]}") from None
    return output


# the tests reading ddp_run share one worker (xdist), so that it runs once
with_ddp_run = pytest.mark.xdist_group("ddp_run")


@pytest.fixture(scope="module")
def ddp_run(tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted 2-process run: its folder, its per-rank records, its output."""
    if not TORCHRUN.is_file():
        pytest.skip("torchrun not installed")
    base = tmp_path_factory.mktemp("ddp")
    proc = torchrun(base / "out", "plain", ddp_args(tiny_model_dir, tiny_cola_dir, base / "runs", "plain"), cold=True)
    output = finished(proc)
    assert proc.returncode == 0, output[-3000:]
    return {"run": base / "runs" / "plain", "out": base / "out", "output": output}


def rank_losses(out: Path, rank: int) -> list[float]:
    return list(json.loads((out / f"rank{rank}.json").read_text())["losses"])


@needs_torchrun
@with_ddp_run
def test_ddp_parameters_are_the_same_on_both_ranks_though_their_batches_differ(ddp_run: dict[str, Any]) -> None:
    """Equal parameters prove the gradients were averaged only if the ranks trained on different
    sentences: each rank's loss differs from the other's at every step (different halves of each batch),
    so without the all-reduce their first updates, and every parameter after, would differ. (Seen: a run
    whose model was not wrapped in DistributedDataParallel ended with different parameters per rank.)"""
    synced = [torch.load(ddp_run["out"] / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert synced[0].keys() == synced[1].keys()
    assert all(torch.equal(synced[0][k], synced[1][k]) for k in synced[0]), "ranks diverged"
    per_rank = [rank_losses(ddp_run["out"], r) for r in (0, 1)]
    assert all(a != b for a, b in zip(*per_rank, strict=True)), per_rank


@needs_torchrun
@with_ddp_run
def test_ddp_only_the_main_process_prints(ddp_run: dict[str, Any]) -> None:
    output = ddp_run["output"]
    for line in (
        "run: ",
        "training ",
        "each step: ",
        "epoch 1: train loss",
        "epoch 2: train loss",
        "best epoch ",
        "model: ",
        "holdout (out_of_domain_dev) MCC",
    ):
        assert sum(printed.startswith(line) for printed in output.splitlines()) == 1, (line, output[-3000:])


@needs_torchrun
@with_ddp_run
def test_ddp_train_loss_is_the_mean_over_ranks(ddp_run: dict[str, Any]) -> None:
    per_rank = [rank_losses(ddp_run["out"], r) for r in (0, 1)]
    assert len(per_rank[0]) == len(per_rank[1]) == 8
    epochs = [e for e in read_metrics(ddp_run["run"]) if e["kind"] == "epoch"]
    for epoch in epochs:
        first = (epoch["epoch"] - 1) * 4
        both = per_rank[0][first : first + 4] + per_rank[1][first : first + 4]
        assert epoch["train_loss"] == pytest.approx(sum(both) / len(both), abs=1e-6)


@needs_torchrun
@with_ddp_run
def test_ddp_resumed_run_equals_an_uninterrupted_one(
    ddp_run: dict[str, Any], tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    """Each rank draws its own dropout masks: a resume must restore every rank's RNG, not rank 0's on all."""
    runs = tmp_path / "runs"
    proc = torchrun(
        tmp_path / "killed",
        "plain",
        ddp_args(tiny_model_dir, tiny_cola_dir, runs, "resumed"),
        fault="checkpoint:write@3",
    )  # rank 0 dies writing step 3's checkpoint
    output = finished(proc)
    assert proc.returncode != 0 and "SIGKILL" in output, output[-3000:]
    proc = torchrun(tmp_path / "resumed", "plain", ["train", "--resume", "resumed", "--runs", str(runs)])
    output = finished(proc)
    assert proc.returncode == 0, output[-3000:]
    starts = [e for e in read_metrics(runs / "resumed") if e["kind"] == "start"]
    assert [s["resumed_at_step"] for s in starts] == [None, 2]
    assert_same_outcome(runs / "resumed", ddp_run["run"], abs_tol=1e-6)


@needs_torchrun
@with_ddp_run
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
def test_ddp_a_stop_request_stops_every_rank_at_the_same_step(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    """The stop request rides on the step's agreement (no collective of its own each step): rank 0 sees
    the request during step 3's forward, and no rank takes step 3."""
    runs = tmp_path / "runs"
    proc = torchrun(tmp_path / "out", "stop-3", ddp_args(tiny_model_dir, tiny_cola_dir, runs, "stopped"))
    output = finished(proc)
    # the first rank to finish exits 130 (stopped) and torchrun ends the other; neither hung in a collective
    assert re.search(r"exitcode: 130\) local_rank: [01]", output) and "checkpoint saved" in output, output[-3000:]
    # a rank torchrun ended first may not have written its file; the first to finish always has
    written = [rank for rank in (0, 1) if (tmp_path / "out" / f"rank{rank}.json").exists()]
    assert written, "neither rank wrote its losses"
    for rank in written:
        assert len(rank_losses(tmp_path / "out", rank)) == 3  # 3 forwards, the 3rd not stepped
    events = read_metrics(runs / "stopped")
    assert [e["step"] for e in events if e["kind"] == "step"] == [1, 2]
    end = [e for e in events if e["kind"] == "end"]
    assert end and end[-1]["status"] == "stopped" and end[-1]["step"] == 2, end
    assert json.loads((runs / "stopped" / "checkpoint" / "meta.json").read_text())["step"] == 2


@needs_torchrun
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail-exception", "injected failure on rank 1"),
        ("fail-nan", "loss became inf"),  # (rank 1 out of memory takes fail-exception's path, another message:
        # that message is tests/core/test_training_faults.py's)
        ("fail-backward", "process 1 failed: RuntimeError: injected failure on rank 1 in backward"),
    ],
)
def test_ddp_a_failure_on_one_rank_stops_every_rank_with_its_message(
    mode: str, message: str, tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    out = tmp_path / "out"
    proc = torchrun(out, mode, ddp_args(tiny_model_dir, tiny_cola_dir, runs, "failing"))
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


@needs_torchrun
@with_ddp_run
def test_ddp_records_once_validates_on_everything_and_matches_one_process_with_the_same_batch(
    ddp_run: dict[str, Any], tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    from workbench.core.data.cola import load_cola

    run = ddp_run["run"]
    events = read_metrics(run)
    assert [e["kind"] for e in events].count("start") == 1  # only the main process writes
    assert events[0]["processes"] == 2
    assert events[0]["steps_per_epoch"] == 128 // 16 // 2  # each process sees its half of each epoch
    epochs = [e for e in events if e["kind"] == "epoch"]
    cola = load_cola(tiny_cola_dir)
    assert [e["val_n"] for e in epochs] == [len(cola["validation"])] * 2  # validation over the whole set
    assert events[-1]["kind"] == "end" and events[-1]["status"] == "done"
    for part in ("config.json", "model/model.safetensors", "checkpoint/meta.json", "eval.json"):
        assert (run / part).is_file(), part
    assert json.loads((run / "eval.json").read_text())["holdout"]["n"] == len(cola["holdout"])

    # the same effective batch (2 x 16) in one process reaches the same quality
    single_args = [*ddp_args(tiny_model_dir, tiny_cola_dir, tmp_path / "runs", "single"), "--batch-size", "32"]
    assert main(single_args) == 0
    single = [e for e in read_metrics(tmp_path / "runs" / "single") if e["kind"] == "epoch"]
    assert epochs[-1]["val_loss"] == pytest.approx(single[-1]["val_loss"], abs=0.03)
