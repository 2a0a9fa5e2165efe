"""The `verifier` console script started in the background, for tests that signal it mid-run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support import leftovers

VERIFIER = Path(sys.executable).parent / "verifier"


def start(*arguments: str | Path, umask: int = -1) -> subprocess.Popen[str]:
    """Returns the running `verifier` with these arguments, its output captured."""
    return subprocess.Popen(
        [str(VERIFIER), *map(str, arguments)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        umask=umask,
    )


def wait_for_sandbox(process: subprocess.Popen[str], servers_before: set[str], timeout: float = 120) -> set[str]:
    """Returns the sandbox server's command line once the agent has started one (fails the test when the
    agent exits first or none starts within `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the agent ended before its sandbox started: {process.communicate()}")
        sandbox = leftovers.postgres_servers() - servers_before
        if sandbox:
            return sandbox
        time.sleep(0.05)
    raise AssertionError("the sandbox cluster never started")
