"""deploy/build-image fails with one line naming what is missing, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import build_image

WRAPPER = Path(build_image.__file__).with_name("build-image")


def test_missing_programs_are_named_in_one_line(tmp_path: Path) -> None:
    """A PATH with only what the wrapper itself needs: no debootstrap, chroot, docker or tar."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("dirname",):
        (bin_dir / program).symlink_to(str(shutil.which(program)))
    (bin_dir / "python3").symlink_to(sys.executable)
    completed = subprocess.run(
        [str(WRAPPER)], env={**os.environ, "PATH": str(bin_dir)}, cwd=tmp_path, capture_output=True, text=True
    )
    assert completed.returncode == 1
    assert completed.stderr == (
        "build-image: debootstrap, chroot, docker, tar not found: apt-get install debootstrap docker.io\n"
    )
    assert completed.stdout == ""


def test_a_directory_that_is_no_checkout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(build_image.BuildError, match=rf"^{tmp_path} is not a checkout of pg-backup-verifier"):
        build_image.source_digest(tmp_path)


def test_the_source_hash_follows_the_installed_files_only(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "verifier").mkdir()
    (tmp_path / "verifier" / "a.py").write_text("A = 1\n")
    before = build_image.source_digest(tmp_path)
    (tmp_path / "verifier" / "__pycache__").mkdir()
    (tmp_path / "verifier" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "docs.md").write_text("not installed\n")
    assert build_image.source_digest(tmp_path) == before
    (tmp_path / "verifier" / "a.py").write_text("A = 2\n")
    assert build_image.source_digest(tmp_path) != before
