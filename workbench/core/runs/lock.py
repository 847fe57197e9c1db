"""One training per run folder: a lock the operating system releases when its process dies."""

from __future__ import annotations

from pathlib import Path

from workbench.core.base.layout import RunError


class RunLock:
    """An exclusive lock on a run folder, held while a process trains into it.

    The OS drops it when the process dies, so a crashed run never stays locked."""

    def __init__(self, folder: Path):
        from filelock import FileLock, Timeout

        self._timeout = Timeout
        self.folder = folder
        self._lock = FileLock(str(folder / ".lock"))

    def __enter__(self) -> RunLock:
        try:
            self._lock.acquire(timeout=0)
        except self._timeout:
            raise RunError(f"{self.folder}: another training is writing this run") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    @staticmethod
    def is_locked(folder: Path) -> bool:
        """Whether a training holds FOLDER's lock now. Asking creates nothing: a missing folder or
        lock file means that no training has it."""
        from filelock import FileLock, Timeout

        if not (folder / ".lock").is_file():
            return False
        lock = FileLock(str(folder / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False
