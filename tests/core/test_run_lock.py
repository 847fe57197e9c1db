"""RunLock: asking whether a run is locked changes nothing."""

from __future__ import annotations

from pathlib import Path

from workbench.core.runs.lock import RunLock


def test_asking_whether_a_run_is_locked_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-run"
    assert RunLock.is_locked(missing) is False
    assert not missing.exists()
    quiet = tmp_path / "finished"
    quiet.mkdir()
    assert RunLock.is_locked(quiet) is False
    assert list(quiet.iterdir()) == []  # no lock file left behind by the question
    with RunLock(quiet):
        assert RunLock.is_locked(quiet) is True
    assert RunLock.is_locked(quiet) is False
