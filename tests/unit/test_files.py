"""Backup files: streamed hashes, and damage reported as byte ranges."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from verifier.archive.files import CHUNK_SIZE, HashingFile, verify_file


def write(path: Path, data: bytes) -> object:
    target = HashingFile(path)
    for start in range(0, len(data), 300_000):
        target.write(data[start : start + 300_000])
    return target.finish(path.name)


def test_streamed_hash_matches_and_file_is_private(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 123)
    entry = write(tmp_path / "b.dump", data)
    assert entry.sha256 == hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]
    assert len(entry.chunk_sha256) == 3  # type: ignore[attr-defined]
    assert (tmp_path / "b.dump").stat().st_mode & 0o777 == 0o600
    assert verify_file(tmp_path / "b.dump", entry).problems == []  # type: ignore[arg-type]


def test_flipped_byte_is_reported_by_its_chunk_range(tmp_path: Path) -> None:
    path = tmp_path / "b.dump"
    entry = write(path, os.urandom(CHUNK_SIZE * 3))
    with path.open("r+b") as handle:
        handle.seek(CHUNK_SIZE + 10)
        byte = handle.read(1)
        handle.seek(CHUNK_SIZE + 10)
        handle.write(bytes([byte[0] ^ 0xFF]))
    problems = verify_file(path, entry).problems  # type: ignore[arg-type]
    assert problems == [f"b.dump: sha256 mismatch; damaged byte range(s) {CHUNK_SIZE}-{2 * CHUNK_SIZE - 1}"]


def test_truncation_is_reported_with_both_sizes(tmp_path: Path) -> None:
    path = tmp_path / "b.dump"
    entry = write(path, os.urandom(5000))
    os.truncate(path, 4000)
    problems = verify_file(path, entry).problems  # type: ignore[arg-type]
    assert problems[0] == "b.dump: size 4000 bytes, manifest says 5000 (truncated)"


def test_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "b.dump").write_bytes(b"good backup")
    with pytest.raises(FileExistsError):
        HashingFile(tmp_path / "b.dump")
    assert (tmp_path / "b.dump").read_bytes() == b"good backup"
