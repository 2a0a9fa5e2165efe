"""Logging for the long-running daemon: journald-friendly stderr, and an optional rotated log file.

Under systemd (`JOURNAL_STREAM` set) each stderr line starts with a `<N>` syslog priority, which
journald turns into the entry's priority, and carries no timestamp (journald adds its own).
Elsewhere, and in the `--log-file`, lines carry an ISO timestamp.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from verifier.errors import ConfigError

LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_COUNT = 5
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_TIMESTAMPED = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    stderr.setFormatter(JournalFormatter("%(message)s") if under_journald else logging.Formatter(_TIMESTAMPED))
    handlers: list[logging.Handler] = [stderr]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            rotating = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_COUNT, encoding="utf-8"
            )
        except OSError as error:
            raise ConfigError(f"--log-file {log_file}: cannot open: {error.strerror}") from None
        rotating.setFormatter(logging.Formatter(_TIMESTAMPED))
        handlers.append(rotating)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    return handlers
