"""train() holds a run folder with `holding_run`: its lock, its pid file, a stale stop request dropped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.core.base.errors import TrainingError
from workbench.core.base.layout import PID_FILE, STOP_FILE, RunError
from workbench.core.runs.lock import RunLock
from workbench.core.training.train import holding_run


def test_a_run_is_held_for_the_with_block_only_and_a_second_claim_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / STOP_FILE).touch()  # left by a `workbench stop` that came too late
    with holding_run(run):
        assert RunLock.is_locked(run)
        assert (run / PID_FILE).read_text().strip() == str(os.getpid())
        assert not (run / STOP_FILE).exists()
        with pytest.raises(TrainingError, match="another training is writing this run"), holding_run(run):
            pass
        assert (run / PID_FILE).is_file()  # the refused claim leaves the holder's files alone
    assert not RunLock.is_locked(run)
    assert not (run / PID_FILE).exists()


def test_a_run_error_from_the_training_itself_goes_through_as_it_is(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(RunError, match="raised inside") as caught, holding_run(run):
        raise RunError("raised inside the block")
    assert not isinstance(caught.value, TrainingError)
    assert not RunLock.is_locked(run) and not (run / PID_FILE).exists()
