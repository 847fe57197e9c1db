"""Writes that survive a power cut: fsync the file, then the folder that names it.

A rename is atomic but not durable: until its folder is synced, a power cut can undo
it, and until a file is synced a renamed-in file can come back empty. So whatever
replaces a checkpoint, a model or a JSON record is synced before the rename, and its
folder after it (ext4, xfs and btrfs all need the folder sync for the rename to stay)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def fsync_file(path: Path | str) -> None:
    """Flush PATH's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    """Flush folder PATH's entries (files created, renamed or removed in it) to the disk.

    A no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (PermissionError, IsADirectoryError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Sync every file under FOLDER, then every folder, deepest first."""
    folders = [folder]
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            folders.append(path)
        elif path.is_file():
            fsync_file(path)
    for path in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(path)


def replace_durable(src: Path | str, dst: Path | str) -> None:
    """os.replace(SRC, DST) that a power cut cannot undo or leave half-done: SRC is synced
    before, DST's folder after."""
    fsync_file(src)
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)  # else a power cut can undo the rename


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """PATH holds DATA whole, or what it held before (a temporary file, synced, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fault_point(name: str) -> None:
    """Test hook for crash tests: with WORKBENCH_FAULT=NAME (or NAME@N, the Nth time) the process
    kills itself with SIGKILL here, as a power cut or the OOM killer would. Unset, it does nothing."""
    spec = os.environ.get("WORKBENCH_FAULT")
    if not spec:
        return
    wanted, _, nth = spec.partition("@")
    if wanted == name:
        _fault_counts[name] = _fault_counts.get(name, 0) + 1
        if _fault_counts[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


_fault_counts: dict[str, int] = {}


def replace_dir_atomic(staged: Path, target: Path) -> None:
    """Swap STAGED in as TARGET so that at every moment one whole copy exists:
    TARGET, or TARGET.old while the swap is under way (see `existing_dir`)."""
    old = target.with_name(f".{target.name}.old")
    fsync_tree(staged)  # every file on the disk before the renames make STAGED the copy to keep
    fsync_dir(target.parent)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
    # else an earlier swap was cut short and OLD may be the only whole copy: keep it until STAGED is in
    fault_point(f"swap:{target.name}")
    os.rename(staged, target)
    fsync_dir(target.parent)  # the renames on the disk before OLD, the previous copy, goes
    fault_point(f"swapped:{target.name}")
    shutil.rmtree(old, ignore_errors=True)


def existing_dir(target: Path, marker: str) -> Path | None:
    """TARGET if whole (has MARKER), else the previous copy left by an interrupted swap."""
    for candidate in (target, target.with_name(f".{target.name}.old")):
        if (candidate / marker).is_file():
            return candidate
    return None


def recover_dir(target: Path, marker: str) -> None:
    """After a crash in the middle of a swap, put the previous whole copy back in place as TARGET; after a
    crash between a swap's last rename and its clean-up (TARGET whole), remove the previous copy left."""
    old = target.with_name(f".{target.name}.old")
    if not (target / marker).is_file() and (old / marker).is_file():
        shutil.rmtree(target, ignore_errors=True)
        os.rename(old, target)
    elif (target / marker).is_file() and old.exists():  # TARGET was synced whole before it was renamed in
        shutil.rmtree(old, ignore_errors=True)
