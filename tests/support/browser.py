"""Headless Debian Chromium for looking at the HTML report the way a reader's browser does.

`dev/install-browser` installs it. Every call gets a fresh profile directory, removed afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str | None:
    """Returns the path of the chromium program, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(page: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Opens `page` in headless Chromium with `arguments` and returns the finished process.

    Raises FileNotFoundError when Chromium is not installed, subprocess.TimeoutExpired after 120 s.
    """
    program = chromium()
    if program is None:
        raise FileNotFoundError("chromium")
    with tempfile.TemporaryDirectory(prefix="pgbv-chromium-") as profile:
        return subprocess.run(
            [program, *FLAGS, f"--user-data-dir={profile}", *arguments, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def dump_dom(page: Path) -> str:
    """Returns the DOM of `page` after the browser loaded it, serialized as HTML."""
    completed = run_chromium(page, "--dump-dom")
    if completed.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom failed: {completed.stderr[-500:]}")
    return completed.stdout


def screenshot(page: Path, output: Path, *, width: int = 1120, height: int = 1800) -> Path:
    """Saves a PNG screenshot of `page` to `output` and returns it."""
    completed = run_chromium(page, f"--window-size={width},{height}", f"--screenshot={output.resolve()}")
    if completed.returncode != 0 or not output.exists():
        raise RuntimeError(f"chromium --screenshot failed: {completed.stderr[-500:]}")
    return output
