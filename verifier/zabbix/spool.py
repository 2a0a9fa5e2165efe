"""The spool: values Zabbix could not be reached for, kept in the repository until the next run sends them.

One JSON object per line, oldest first: a header line `{"spool": 1, "dropped": N}` and then one line
per value with its host, key, value and original clock. The file is bounded (`zabbix.spool_max`
values); when it would grow past the bound the oldest values are dropped and counted in the header.
Every change rewrites the whole file atomically (temp file, fsync, rename), so a crash leaves either
the old or the new spool, never a torn one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SPOOL_FORMAT = 1


@dataclass(frozen=True)
class SpooledValue:
    """A value waiting to be delivered: the host it belongs to and its original clock."""

    host: str
    key: str
    value: str
    clock: int
    ns: int = 0


@dataclass(frozen=True)
class SpoolContent:
    """The spooled values (oldest first) and how many were dropped to keep the bound, ever."""

    values: list[SpooledValue]
    dropped: int
    skipped: tuple[str, ...] = ()  # the unreadable lines, each "line N: why", left out of `values`


class Spool:
    """The spool file at `path`, holding at most `limit` values."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit

    def load(self) -> SpoolContent:
        """Returns the spool's content (empty when the file does not exist).

        Unreadable lines (not UTF-8, not JSON, not a value) are skipped with a warning and named in
        `skipped`, rather than blocking delivery; the others are kept. Raises OSError.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return SpoolContent(values=[], dropped=0)
        values: list[SpooledValue] = []
        dropped = 0
        skipped: list[str] = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                if "spool" in record:
                    dropped = int(record.get("dropped", 0))
                    continue
                values.append(
                    SpooledValue(
                        host=str(record["host"]),
                        key=str(record["key"]),
                        value=str(record["value"]),
                        clock=int(record["clock"]),
                        ns=int(record.get("ns", 0)),
                    )
                )
            except (ValueError, KeyError, TypeError, AttributeError) as error:  # UnicodeDecodeError is a ValueError
                logger.warning("%s line %d is unreadable and skipped: %s", self.path, number, error)
                skipped.append(f"line {number}: {type(error).__name__}: {error}")
        return SpoolContent(values=values, dropped=dropped, skipped=tuple(skipped))

    def save(self, values: Sequence[SpooledValue], dropped: int) -> None:
        """Replaces the spool with `values` (oldest first), or deletes it when nothing waits and
        nothing was ever dropped. Raises OSError."""
        if not values and dropped == 0:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = [json.dumps({"spool": SPOOL_FORMAT, "dropped": dropped})]
        lines += [
            json.dumps(
                {"host": v.host, "key": v.key, "value": v.value, "clock": v.clock, "ns": v.ns},
                ensure_ascii=False,
            )
            for v in values
        ]
        write_durably(self.path, "\n".join(lines) + "\n")

    def bounded(self, values: Sequence[SpooledValue], dropped: int) -> SpoolContent:
        """Returns `values` cut to the newest `limit`, with the dropped counter raised by what was cut."""
        excess = max(0, len(values) - self.limit)
        if excess:
            logger.warning("Zabbix spool full (%d values): dropping the %d oldest", self.limit, excess)
        return SpoolContent(values=list(values[excess:]), dropped=dropped + excess)


def write_durably(path: Path, text: str) -> None:
    """Replaces `path` with `text` atomically (temp file, fsync, rename, fsync of the directory), mode 0600,
    so a crash leaves the old or the new content, and a finished write survives a power cut. Raises OSError."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.rename(path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
