"""`workbench train --resume` of a run that cannot be resumed: refused in one line, the run left as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.runs.metrics import read_metrics
from workbench.core.runs.status import run_info


def test_resuming_a_finished_run_is_refused_and_leaves_it_done(
    cli_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found with item 2: the refusal used to append a 'failed' end, so the run listed as failed."""
    run = tmp_path / "runs" / "done"
    shutil.copytree(cli_runs / "whole", run)
    before = (run / "metrics.jsonl").read_bytes()
    assert main(["train", "--resume", "done", "--runs", str(tmp_path / "runs")]) == 2
    assert "finished" in capsys.readouterr().err
    assert run_info(run).status == "done"
    assert (run / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize("status", ["done", "stopped"])
def test_a_run_whose_checkpoint_was_deleted_is_not_trained_again(
    status: str, cli_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweep deletes its trials' checkpoints (done or pruned): a resume has nothing to start from,
    and must not take them for runs killed before their first checkpoint."""
    run = tmp_path / "runs" / "swept"
    shutil.copytree(cli_runs / "whole", run)
    shutil.rmtree(run / "checkpoint")
    if status == "stopped":  # cut after epoch 1 and its checkpoint, then stopped (as a pruned trial)
        events = read_metrics(run)
        cut = next(i for i, e in enumerate(events) if e["kind"] == "checkpoint")
        lines = [json.dumps(e) for e in events[: cut + 1]] + [json.dumps({"kind": "end", "time": "", "status": status})]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = (run / "metrics.jsonl").read_bytes()
    assert main(["train", "--resume", "swept", "--runs", str(tmp_path / "runs")]) == 2
    said = capsys.readouterr().err
    assert ("finished" if status == "done" else "no checkpoint to resume from") in said, said
    assert (run / "metrics.jsonl").read_bytes() == before
