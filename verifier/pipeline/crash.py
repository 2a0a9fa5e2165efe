"""The crash rule: an exception the code did not expect, at any step of a run, ends the run as
could-not-run (exit 3) with one line naming the step, and the run still reports — never exit 0 or 1,
which a scheduler that tolerates warnings would count as a good night.

The traceback is kept in the run's report (reports/<run>.json and the history), and logged at DEBUG
(shown with --debug); the one line is what the operator reads.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from verifier.errors import one_line
from verifier.pipeline.outcomes import Crashed
from verifier.progress import Meter, Step

logger = logging.getLogger(__name__)


class StepTracker:
    """The run's step callback, remembering which step runs now (the crash line names it)."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.current = "start"

    def __call__(self, name: str) -> Meter | None:
        """Starts step `name`. Returns the step's meter, as the wrapped callback does."""
        self.current = name
        return self.step(name)


def note_crash(run_id: str, error: Exception, step: str, *, dumping: bool, verifying: bool, sandbox: str) -> Crashed:
    """Returns the outcome of an unexpected `error` raised in `step` of run `run_id`: could-not-run with
    one line, the traceback kept, and the dump (when `dumping`) or the verification (when `verifying`,
    in a `sandbox` of that kind) it cut short to be marked failed, so the checks and Zabbix say so."""
    line = (
        f"unexpected error in step {step}: {type(error).__name__}: {one_line(error)} (a bug in the agent: "
        f"please report it with the traceback in reports/{run_id}.json, or run with --debug)"
    )
    logger.error("%s", line)
    logger.debug("traceback of the unexpected error", exc_info=error)
    return Crashed(
        line=line,
        traceback="".join(traceback.format_exception(error)),
        dumping=dumping,
        verifying=verifying,
        sandbox=sandbox,
    )


@contextmanager
def survived(what: str, crashed: bool) -> Iterator[None]:
    """After a crash (`crashed`), runs the block and logs instead of raising when it fails too, so the
    report, the history row and the Zabbix values each get their chance; otherwise a no-op."""
    if not crashed:
        yield
        return
    try:
        yield
    except Exception as error:  # the run already crashed: what can still be recorded must be
        logger.error("after the unexpected error, %s failed too: %s: %s", what, type(error).__name__, one_line(error))
        logger.debug("traceback", exc_info=error)
