"""A small filesystem mounted for one test: a full disk, a read-only repository (needs root, as CI runs)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(mount_point: Path, options: str) -> Iterator[Path]:
    """Mounts a tmpfs with `options` (e.g. "size=4m,mode=0700" or "ro,size=1m") on a new directory
    `mount_point`, yields it, and unmounts it afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def small_disk(mount_point: Path, size: str = "4m") -> contextlib.AbstractContextManager[Path]:
    """A tmpfs of `size` (mode 0700) for tests that fill a disk on purpose."""
    return tmpfs(mount_point, f"size={size},mode=0700")
