"""Durability: what reaches the disk and in which order (every fsync and rename, spied on as the OS
saw them) when a folder is replaced, a JSON record or config written, metrics appended."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from workbench.core.base.config import TrainConfig
from workbench.core.base.durable import replace_dir_atomic, write_json_atomic
from workbench.core.runs.metrics import MetricsWriter, read_metrics


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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
def test_json_records_and_config_are_synced_and_so_is_their_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
