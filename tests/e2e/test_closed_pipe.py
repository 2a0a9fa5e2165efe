"""`verifier list | head -1`: a reader that leaves early is no error. The command finishes quietly
with its own exit code (no BrokenPipeError, no traceback, no exit 1 from a failed flush) (issue 22.10)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import VERIFIER


@pytest.mark.parametrize("command", [("list",), ("list", "--json"), ("prune", "--dry-run"), ("history",)], ids=" ".join)
def test_a_reader_that_left_is_no_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    repository = tmp_path / "repo"
    repository.mkdir(mode=0o700)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"source": {"host": "127.0.0.1", "port": 9, "dbname": "app"},
                                      "repository": {"path": str(repository)}}))  # fmt: skip
    reading_end, writing_end = os.pipe()
    os.close(reading_end)  # the reader is gone before the first line: every write meets EPIPE
    try:
        completed = subprocess.run(
            [str(VERIFIER), *command, "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=writing_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writing_end)
    assert completed.stderr == "", completed.stderr
    assert completed.returncode == 0
