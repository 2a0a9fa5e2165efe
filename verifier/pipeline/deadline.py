"""The run's deadline (`run_timeout`): a SIGALRM that ends the step running then."""

from __future__ import annotations

import signal
import threading

from verifier.errors import RunTimedOut
from verifier.units import format_seconds


class Deadline:
    """Raises RunTimedOut in the main thread once `seconds` have passed, so the step running then ends
    through its own cleanup (pg_dump killed, the sandbox removed) and the run still reports, as
    CRITICAL. Fires at most once; leaving the `with` block (before retention and the report) disarms
    it. A no-op outside the main thread (signals are delivered there only)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.message = f"the run took longer than run_timeout ({format_seconds(seconds)}) and was ended"
        self.expired = False
        self.armed = threading.current_thread() is threading.main_thread()
        if self.armed:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, seconds)

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        """Disarms the timer and restores the previous SIGALRM handler."""
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
            self.armed = False

    @property
    def blame(self) -> str | None:
        """Returns, once expired, the failure to name for the step it ended (the error that surfaced
        there may be a consequence, such as a connection interrupted mid-query); None before."""
        return self.message if self.expired else None

    def _expire(self, _signal: int, _frame: object) -> None:
        self.cancel()
        self.expired = True
        raise RunTimedOut(self.message)
