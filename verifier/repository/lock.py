"""One run at a time per repository: an `fcntl` lock that the kernel releases when its holder dies,
so a lock left by a killed run is simply taken over."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from verifier.errors import LockHeld

logger = logging.getLogger(__name__)


class RepositoryLock:
    """An exclusive lock on `<repository>/.lock`, holding the holder's pid and start time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Takes the lock. Raises LockHeld naming the holder's pid and start time."""
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip() or "unknown holder"
            os.close(descriptor)
            raise LockHeld(f"another run ({holder}) holds the lock {self.path}; try again when it ends") from None
        started = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"pid {os.getpid()}, started {started}\n".encode(), 0)
        except OSError as error:  # the kernel's lock is held: the holder's name is only for people
            logger.warning("lock %s is held, but its holder could not be written: %s", self.path, error.strerror)
        self._descriptor = descriptor

    def release(self) -> None:
        """Releases the lock; safe to call when not held."""
        if self._descriptor is not None:
            with contextlib.suppress(OSError):  # a full disk cannot keep the lock from being released
                os.ftruncate(self._descriptor, 0)
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self) -> RepositoryLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
