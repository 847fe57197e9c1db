"""A training interrupted or raced, in real processes: SIGKILL at any moment (inside checkpoint and
model writes through the WORKBENCH_FAULT hook, before the first checkpoint, in the final
evaluation, at random) resumes to the run never interrupted; SIGINT checkpoints and exits 130; a
second process cannot train into a run being written."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import warm
from helpers.cli import one_error_line, train_args
from helpers.runs import assert_same_outcome

from workbench.cli import main
from workbench.core.base.durable import existing_dir
from workbench.core.runs.metrics import read_metrics
from workbench.core.runs.status import run_info
from workbench.core.training.checkpoint import load_checkpoint


def killable_args(model: Path, data: Path, runs: Path, name: str) -> list[str]:
    """helpers.cli.train_args with a checkpoint every step: 2 epochs of 4 steps (64 sentences)."""
    return train_args(model, data, runs, name, "--checkpoint-every", "1")


def cli_process(args: list[str], fault: str = "") -> warm.WarmProcess:
    """`workbench ARGS` in its own process (started warm: helpers/warm.py), stderr into stdout."""
    return warm.cli(args, {**os.environ, "WORKBENCH_FAULT": fault})


def killed(args: list[str], fault: str) -> None:
    proc = cli_process(args, fault=fault)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, output


def test_sigkill_at_any_moment_keeps_the_previous_checkpoint_and_resume_matches_an_uninterrupted_run(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    """One run killed four times (three inside checkpoint and model writes, by the WORKBENCH_FAULT hook,
    one at a random moment), resumed after each, ends as a run that was never interrupted."""
    runs = tmp_path / "runs"
    assert main(killable_args(tiny_model_dir, tiny_cola_dir, runs, "whole")) == 0  # 8 steps, 2 epochs
    args = killable_args(tiny_model_dir, tiny_cola_dir, runs, "killed")
    resume = ["train", "--resume", "killed", "--runs", str(runs)]
    run = runs / "killed"

    killed(args, "swap:checkpoint@3")  # step 3: checkpoint/ moved aside, the new one not yet in
    assert not (run / "checkpoint").exists() and (run / ".checkpoint.old" / "meta.json").is_file()
    assert load_checkpoint(run)[0]["step"] == 2

    killed(resume, "swap:model@1")  # end of epoch 1, while the first best model is moved into place
    meta, _ = load_checkpoint(run)
    assert (meta["step"], meta["epoch"], meta["epoch_step"]) == (4, 0, 4) and not (run / "model").exists()

    killed(resume, "checkpoint:write@2")  # step 5: its state written, its marker not yet
    meta, state = load_checkpoint(run)
    assert (meta["step"], meta["epoch"]) == (4, 1) and "optimizer" in state
    assert (run / "model" / "model.safetensors").is_file()

    seed = int(time.time())
    rng = random.Random(seed)
    proc = cli_process(resume)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if any(e["kind"] == "step" and e["step"] > 5 for e in read_metrics(run)):
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.1))  # somewhere in a step, a checkpoint write or the final evaluation
    proc.kill()
    proc.communicate(timeout=60)
    ends = [e["status"] for e in read_metrics(run) if e["kind"] == "end"]
    if ends and ends[-1] == "done":  # the kill came after the run ended: the run must be whole as it is
        assert_same_outcome(run, runs / "whole")
        assert main(resume) == 2  # nothing left to resume
        return
    # killed in a step, a checkpoint, a validation or the final evaluation (after the last
    # checkpoint, marked finished): every case resumes to the run that was never interrupted
    assert main(resume) == 0, f"random seed {seed}, killed at step {load_checkpoint(run)[0]['step']}"
    assert (run / "checkpoint" / "meta.json").is_file() and not (run / ".checkpoint.old").exists()
    assert_same_outcome(run, runs / "whole")


def test_two_processes_cannot_train_into_one_run_folder(
    tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    args = train_args(tiny_model_dir, tiny_cola_dir, runs, "shared")
    args[args.index("--epochs") + 1] = "500"  # still training when the others try (it is killed at the end)
    first = cli_process(args)
    try:
        deadline = time.time() + 120
        while not any(e["kind"] == "step" for e in read_metrics(runs / "shared")):
            assert first.poll() is None and time.time() < deadline, first.communicate()[0]
            time.sleep(0.1)
        before = (runs / "shared" / "metrics.jsonl").stat().st_size
        assert main(["train", "--resume", "shared", "--runs", str(runs)]) == 2
        assert "another training is writing this run" in one_error_line(capsys)
        assert main(args) == 2
        assert "a run already exists here" in one_error_line(capsys)
        assert first.poll() is None  # the first training goes on, its events untouched by the others
        assert all(e.get("status") != "failed" for e in read_metrics(runs / "shared"))
        assert (runs / "shared" / "metrics.jsonl").stat().st_size >= before
    finally:
        first.kill()
        first.communicate(timeout=60)


def run_cli(args: list[str], fault: str = "") -> subprocess.CompletedProcess[str]:
    return warm.run_cli(args, {**os.environ, "WORKBENCH_FAULT": fault})


def test_a_run_killed_before_its_first_checkpoint_restarts_from_step_0(
    cli_runs: Path, tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    run = runs / "early"
    killed = run_cli(train_args(tiny_model_dir, tiny_cola_dir, runs, "early"), fault="swap:model@1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # end of epoch 1, while its best model moves in: 4 steps done, no checkpoint yet
    assert existing_dir(run / "checkpoint", "meta.json") is None and (run / "config.json").is_file()
    assert [e["step"] for e in read_metrics(run) if e["kind"] == "step"] == [1, 2, 3, 4]

    assert main(["train", "--resume", "early", "--runs", str(runs)]) == 0
    said = capsys.readouterr()
    assert re.search(r"(?i)no checkpoint.*step 0", said.out + said.err), said.out + said.err
    assert run_info(run).status == "done"
    assert_same_outcome(run, cli_runs / "whole")  # the saved config.json, from step 0: the same run


def test_a_run_killed_in_its_final_evaluation_resumes_and_finishes_it(
    cli_runs: Path, tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    run = runs / "late"
    killed = run_cli(train_args(tiny_model_dir, tiny_cola_dir, runs, "late"), fault="final-eval")
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
    assert_same_outcome(run, cli_runs / "whole")
    # calibrated before the kill, not again after it (a second pass would record a threshold of 0.5)
    whole_report = json.loads((cli_runs / "whole" / "eval.json").read_text(encoding="utf-8"))
    assert report["calibration"] == whole_report["calibration"]
    assert json.loads((run / "checkpoint" / "meta.json").read_text())["evaluated"] is True


def test_sigint_checkpoints_exits_130_and_resumes(tiny_model_dir: Path, tiny_cola_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = train_args(tiny_model_dir, tiny_cola_dir, runs, "int")
    args[args.index("--train-limit") + 1] = "216"  # 2 epochs of 54 steps: still training when the signal comes
    args[args.index("--batch-size") + 1] = "4"
    proc = cli_process(args)
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = [e for e in read_metrics(runs / "int") if e["kind"] == "step"]
        if len(steps) >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "workbench train --resume int" in output
    assert (runs / "int" / "checkpoint" / "meta.json").is_file()
    assert main(["train", "--resume", "int", "--runs", str(runs)]) == 0
    events = read_metrics(runs / "int")
    assert [e["status"] for e in events if e["kind"] == "end"] == ["stopped", "done"]
    steps = [e["step"] for e in events if e["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1))  # no step lost or repeated
