"""How a long step tells the person watching how far it is.

The pipeline announces each step with a `Step` callback ("restore"); the callback may return a
`Meter`, which the step's work calls with what it measured so far. The work never prints: the
terminal renderer draws a progress bar from the measures, the log renderer writes a summary
line when the step ends, and the daemon passes a callback that returns no meter at all.
"""

from __future__ import annotations

from collections.abc import Callable

BYTES_WRITTEN = "bytes written"
"""The dump: bytes of the backup file written so far (no total: a dump's size is known at its end)."""
TABLES_COUNTED = "tables counted"
"""Counting rows: tables counted so far, of how many."""
ROWS_RESTORED = "rows restored"
"""The restore: rows in the sandbox so far, of the snapshot's total when the backup has a manifest."""

Meter = Callable[[str, int, int | None], None]
"""Called with (what, done so far, total or None); `what` is one of the constants above. May be
called from any thread."""

Step = Callable[[str], Meter | None]
"""Called when a step starts, with its name; returns the meter of that step, or None."""
