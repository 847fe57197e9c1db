"""Writes that survive a power cut: fsync the file, then the folder that names it.

A rename is atomic but not durable: until its folder is synced, a power cut can undo
it, and until a file is synced a renamed-in file can come back empty. So whatever
replaces a checkpoint, a model or a JSON record is synced before the rename, and its
folder after it (ext4, xfs and btrfs all need the folder sync for the rename to stay)."""

from __future__ import annotations

import os
from pathlib import Path


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
