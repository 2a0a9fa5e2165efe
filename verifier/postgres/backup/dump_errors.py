"""pg_dump's failures in one line each, with the remedy where there is one (a lock wait, a standby's
recovery conflict)."""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)


def pg_error(stderr: str) -> str:
    """Returns the most telling line of a PostgreSQL program's stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "error:" in line or "FATAL" in line or "ERROR" in line:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if "detail: " in following:  # e.g. why the server dropped the connection
                line += " (" + following.split("detail: ", 1)[1] + ")"
            return one_line_text(line)
    return one_line_text(lines[-1]) if lines else "no message"


def pg_warned(program: str, stderr: str) -> list[str]:
    """Returns, each in one line and logged, the warnings a PostgreSQL program that succeeded printed
    (e.g. pg_dump's "subscriptions not dumped because current user is not a superuser")."""
    warnings = [one_line_text(line.split(": warning: ", 1)[1]) for line in stderr.splitlines() if ": warning: " in line]
    for warning in warnings:
        logger.warning("%s: %s", program, warning)
    return warnings


_LOCKED_TABLE = re.compile(r"LOCK TABLE (?P<table>\S+) IN ACCESS SHARE MODE")
_RECOVERY_CONFLICT = "conflict with recovery"


def pg_dump_error(stderr: str) -> str:
    """Returns pg_dump's failure in one line, saying what to do about a lock wait or a standby conflict."""
    locked = _LOCKED_TABLE.search(stderr)
    if "lock timeout" in stderr and locked is not None:
        return lock_wait_failure([locked.group("table")])
    message = pg_error(stderr)
    if _RECOVERY_CONFLICT in stderr and _RECOVERY_CONFLICT not in message:
        message += f": {_RECOVERY_CONFLICT}"
    return explain(message)


def lock_wait_failure(tables: list[str]) -> str:
    which = f"table {', '.join(tables)}" if tables else "a table"
    return (
        f"could not lock {which} within dump.lock_wait_timeout: another session holds an ACCESS EXCLUSIVE "
        "lock on it (a migration, a VACUUM FULL?); the dump was abandoned rather than hold the snapshot open"
    )


def explain(message: str) -> str:
    """Returns `message` in one line, with the remedy for a standby's recovery conflict."""
    message = one_line_text(message)
    if _RECOVERY_CONFLICT in message:
        message += (
            " (the standby replayed changes that remove rows this snapshot still needs: set "
            "hot_standby_feedback = on on the standby, or raise max_standby_streaming_delay)"
        )
    return message


def one_line_text(text: str) -> str:
    return " ".join(text.split())[:500]
