"""Writing and checking backup files: atomic, mode 0600, sha256 and per-chunk hashes while streaming.

The per-chunk hashes let a damaged file be reported by byte range. Nothing here loads a whole
file into memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from verifier.manifest import FileEntry

CHUNK_SIZE = 1024 * 1024
CHUNK_DIGEST_CHARS = 16


class HashingFile:
    """A new file (mode 0600, must not exist) that hashes what is written to it, whole and per chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._handle = os.fdopen(descriptor, "wb", buffering=0)
        self._whole = hashlib.sha256()
        self._chunk = hashlib.sha256()
        self._chunk_filled = 0
        self.size = 0
        self.chunk_digests: list[str] = []

    def write(self, data: bytes | memoryview) -> None:
        """Appends `data`. Raises OSError (e.g. ENOSPC)."""
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += self._handle.write(view[written:]) or 0
        self._whole.update(view)
        while view:
            room = CHUNK_SIZE - self._chunk_filled
            piece, view = view[:room], view[room:]
            self._chunk.update(piece)
            self._chunk_filled += len(piece)
            if self._chunk_filled == CHUNK_SIZE:
                self._close_chunk()
        self.size += len(data)

    def finish(self, relative_path: str) -> FileEntry:
        """Flushes, fsyncs and closes the file. Returns its manifest entry. Raises OSError."""
        if self._chunk_filled or not self.chunk_digests:
            self._close_chunk()
        os.fsync(self._handle.fileno())
        self._handle.close()
        return FileEntry(
            path=relative_path,
            size=self.size,
            sha256=self._whole.hexdigest(),
            chunk_size=CHUNK_SIZE,
            chunk_sha256=self.chunk_digests,
        )

    def abandon(self) -> None:
        """Closes and deletes the file; never raises."""
        with contextlib.suppress(OSError):
            self._handle.close()
        self.path.unlink(missing_ok=True)

    def _close_chunk(self) -> None:
        self.chunk_digests.append(self._chunk.hexdigest()[:CHUNK_DIGEST_CHARS])
        self._chunk = hashlib.sha256()
        self._chunk_filled = 0


def hash_existing(path: Path, relative_path: str) -> FileEntry:
    """Returns the manifest entry of a file already written (directory-format dumps). Raises OSError."""
    whole = hashlib.sha256()
    digests = []
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_SIZE):
            whole.update(block)
            digests.append(hashlib.sha256(block).hexdigest()[:CHUNK_DIGEST_CHARS])
            size += len(block)
        os.fsync(handle.fileno())
    return FileEntry(
        path=relative_path,
        size=size,
        sha256=whole.hexdigest(),
        chunk_size=CHUNK_SIZE,
        chunk_sha256=digests or [hashlib.sha256(b"").hexdigest()[:CHUNK_DIGEST_CHARS]],
    )


def fsync_directory(path: Path) -> None:
    """Makes a rename or a new file in `path` durable. Raises OSError."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class FileDamage:
    """How a file differs from its manifest entry."""

    path: str
    problems: list[str] = field(default_factory=list)


def verify_file(path: Path, entry: FileEntry) -> FileDamage:
    """Returns the differences between `path` and its manifest entry (no problems: intact).

    Damaged chunks are reported as byte ranges; a short or long file by its size. Never raises
    for a missing or unreadable file: that is reported as a problem.
    """
    damage = FileDamage(path=entry.path)
    try:
        size = path.stat().st_size
    except OSError as error:
        damage.problems.append(f"{entry.path}: cannot read: {error.strerror}")
        return damage
    if size != entry.size:
        change = "truncated" if size < entry.size else "grown"
        damage.problems.append(f"{entry.path}: size {size} bytes, manifest says {entry.size} ({change})")
    whole = hashlib.sha256()
    bad_ranges: list[tuple[int, int]] = []
    with path.open("rb") as handle:
        for index, block in enumerate(_blocks(handle, entry.chunk_size)):
            whole.update(block)
            expected = entry.chunk_sha256[index] if index < len(entry.chunk_sha256) else None
            if hashlib.sha256(block).hexdigest()[:CHUNK_DIGEST_CHARS] != expected:
                start = index * entry.chunk_size
                bad_ranges.append((start, start + len(block) - 1))
    if whole.hexdigest() != entry.sha256:
        ranges = ", ".join(f"{start}-{end}" for start, end in _merge(bad_ranges)[:5])
        damage.problems.append(f"{entry.path}: sha256 mismatch; damaged byte range(s) {ranges or 'unknown'}")
    return damage


def _blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    while block := handle.read(size):
        yield block


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start == merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
