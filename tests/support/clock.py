"""The next night without waiting for it: runs in this process that must start in a later second than the
run before (backup names, Zabbix clocks and heartbeats have one-second resolution) move the wall clock
ahead instead of sleeping a second.

The clock is moved with time-machine (as the daemon's tests move schedule's): `datetime.now`, `time.time`
and the like, ticking on from there; the monotonic clock, which every timeout uses, is left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import time_machine


class Nights:
    """Each `next()` block runs one second further ahead of the real clock than the block before it, so
    it starts in a later second than anything before it in the test. Use it for every run after the first
    one that needs a new second (a block without it would run at the real time, behind the last one)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    @contextlib.contextmanager
    def next(self) -> Iterator[datetime]:
        """Moves the wall clock one more second ahead for the block. Yields the time it starts at."""
        self.ahead += timedelta(seconds=1)
        start = datetime.now(UTC) + self.ahead
        with time_machine.travel(start, tick=True):
            yield start
