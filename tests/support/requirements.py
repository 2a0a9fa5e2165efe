"""Skipping for a missing service: allowed on a developer's machine, a failure under CI.

`.ci/run` installs PostgreSQL, Zabbix and the Docker engine, so under `CI=true` a missing one
means the install step is broken, and the test must fail rather than skip silently.
"""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    """Returns True when running under CI (`CI=true`)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(available: bool, what: str) -> None:
    """Skips the test when `what` is unavailable, or fails it under CI."""
    if available:
        return
    if under_ci():
        pytest.fail(f"{what} is not available under CI: .ci/run must install it")
    pytest.skip(f"{what} is not available")
