"""End-to-end: the installed `verifier` console script, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import nothing_left_behind, source_db  # noqa: F401 - shared fixtures

VERIFIER = Path(sys.executable).parent / "verifier"


def verifier(*arguments: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs the installed console script with no terminal and returns what it printed."""
    if not VERIFIER.exists():
        pytest.fail(f"{VERIFIER} is missing: install the package into this environment (pip install -e .)")
    return subprocess.run(
        [str(VERIFIER), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
