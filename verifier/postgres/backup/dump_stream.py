"""Writing pg_dump's stdout into the repository: compressed (gzip for plain SQL, zstd for a custom
archive pg_dump left uncompressed), hashed whole and per chunk as it streams, and handed chunk by
chunk to a `tap` (a restore reading the same stream) when one listens."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from verifier.archive import zstd
from verifier.archive.files import HashingFile
from verifier.config import DumpConfig
from verifier.manifest import FileEntry
from verifier.process import RunningProgram
from verifier.progress import BYTES_WRITTEN, Meter
from verifier.units import mebibytes

Compression = Literal["gzip", "zstd"] | None


def agent_compresses(dump_config: DumpConfig) -> bool:
    """Returns True when the agent compresses the archive with zstd (custom format, no pg_dump level set)."""
    return dump_config.format == "custom" and dump_config.compression is None


class Streamer(threading.Thread):
    """Copies pg_dump's stdout into the partial file (gzip-compressed for plain, zstd for a custom
    archive pg_dump left uncompressed), hashing as it goes."""

    def __init__(
        self,
        program: RunningProgram,
        partial: Path,
        final_name: str,
        compression: Compression,
        meter: Meter | None,
        tap: Callable[[bytes], None] | None = None,
    ) -> None:
        """`tap` gets every chunk as pg_dump wrote it (uncompressed), before it is compressed and saved."""
        super().__init__(name="dump-writer", daemon=True)
        self.program = program
        self.target = HashingFile(partial)
        self.final_name = final_name
        self.compression = compression
        self.meter = meter
        self.tap = tap
        self.entry: FileEntry | None = None
        self.error: str | None = None

    def run(self) -> None:
        compressor: zstd.Compressor | zlib._Compress | None = None
        if self.compression == "gzip":
            compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif self.compression == "zstd":
            compressor = zstd.Compressor()
        written = 0
        try:
            for chunk in self.program.stdout_chunks():
                if self.tap is not None:
                    self.tap(chunk)
                data = compressor.compress(chunk) if compressor else chunk
                self.target.write(data)
                written += len(data)
                if self.meter is not None:
                    self.meter(BYTES_WRITTEN, written, None)
            if compressor is not None:
                data = compressor.flush()
                self.target.write(data)
                written += len(data)
                if self.meter is not None:  # a small dump is all in the compressor's buffer until now
                    self.meter(BYTES_WRITTEN, written, None)
            self.entry = self.target.finish(self.final_name)
        except OSError as error:
            self.error = f"{error.strerror or error}{space_note(error, self.target)}"
            self.program.kill()
            self.target.abandon()
        except ValueError:  # the file was closed under it: the run was interrupted and abandoned the dump
            self.error = "abandoned"
            self.program.kill()

    def abandon(self) -> None:
        """Removes the partial file (the run was interrupted); a write still under way ends quietly."""
        self.target.abandon()


def space_note(error: OSError, target: HashingFile) -> str:
    """Returns, for a full disk, how much of the dump was written and how much space is left."""
    if error.errno != errno.ENOSPC:
        return ""
    try:
        stats = os.statvfs(target.path.parent)
    except OSError:
        return ""
    free = stats.f_bavail * stats.f_frsize
    using = largest_entries(target.path.parent, skip=target.path)
    return (
        f" after {target.size / 1048576:.1f} MiB written: the dump needs more than that, "
        f"{free / 1048576:.1f} MiB free in {target.path.parent}" + (f"; using it: {using}" if using else "")
    )


def largest_entries(directory: Path, *, skip: Path, count: int = 3) -> str:
    """Returns the `count` largest entries of `directory` (a subdirectory's size is its files'), e.g.
    "state/ 39.0 MiB, eatfit24_2026-12-01.dump.zst 12.0 MiB", leaving out `skip` (the partial dump);
    "" when the directory cannot be read. Links are not followed."""
    sizes: list[tuple[int, str]] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return ""
    for entry in entries:
        if entry == skip:
            continue
        sizes.append((_size(entry), f"{entry.name}/" if entry.is_dir() and not entry.is_symlink() else entry.name))
    sizes.sort(reverse=True)
    return ", ".join(f"{name} {mebibytes(size)}" for size, name in sizes[:count])


def _size(path: Path) -> int:
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
        total = 0
        for directory, _, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += (Path(directory) / name).lstat().st_size
        return total
    except OSError:
        return 0
