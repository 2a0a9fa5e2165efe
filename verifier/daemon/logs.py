"""Logging for the daemon and for every command off a terminal: journald-friendly stderr, and an
optional rotated log file.

Under systemd (`JOURNAL_STREAM` set) each stderr line starts with a `<N>` syslog priority, which
journald turns into the entry's priority, and carries no timestamp (journald adds its own).
Elsewhere (a cron mail, `>> /var/log/…`), and in the `--log-file`, lines start with an ISO 8601
timestamp with its UTC offset, so the line says which time it is.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from datetime import datetime
from pathlib import Path

from verifier.errors import ConfigError

LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_COUNT = 5
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class TimestampedFormatter(logging.Formatter):
    """Formats "2026-11-26T03:30:00+03:00 LEVEL logger: message" (local time with its offset)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        """Returns the record's time in ISO 8601, to the second, with the UTC offset."""
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")


class JournalFormatter(logging.Formatter):
    """Formats "<priority>logger: message" for journald's stderr stream."""

    def format(self, record: logging.LogRecord) -> str:
        """Returns the record with its syslog priority prefix."""
        priority = _PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{record.name}: {super().format(record)}"


def configure(*, log_file: Path | None = None, level: int = logging.INFO) -> list[logging.Handler]:
    """Replaces the root logger's handlers with stderr (journald-aware) and, if given, a rotated file.

    Returns the installed handlers. Raises ConfigError when the log file cannot be opened.
    """
    stderr = logging.StreamHandler(sys.stderr)
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    stderr.setFormatter(JournalFormatter("%(message)s") if under_journald else TimestampedFormatter())
    handlers: list[logging.Handler] = [stderr]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            rotating = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_COUNT, encoding="utf-8"
            )
        except OSError as error:
            raise ConfigError(f"--log-file {log_file}: cannot open: {error.strerror}") from None
        rotating.setFormatter(TimestampedFormatter())
        handlers.append(rotating)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    return handlers
