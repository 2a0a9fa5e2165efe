"""The agent's compression of custom archives: pg_dump writes `--compress=0`, the agent compresses
with zstd on two threads while it streams (PostgreSQL 15's pg_dump compresses only with zlib, on one
thread: the nightly dump's bottleneck), and decompresses on the fly when an archive is restored or
read. A stored `NAME.dump.zst` is `zstd -dc NAME.dump.zst | pg_restore ...` for a person restoring
by hand. Nothing here holds more than one chunk of an archive in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import zstandard

MAGIC = b"\x28\xb5\x2f\xfd"  # every zstd frame starts with it; a custom archive starts with PGDMP
SUFFIX = ".zst"
LEVEL = 3  # zstd's default: smaller than gzip -6, several times faster
THREADS = 2
READ_SIZE = 1024 * 1024


class Compressor:
    """Compresses a stream chunk by chunk on `THREADS` threads (the GIL is released while it works)."""

    def __init__(self, level: int = LEVEL) -> None:
        self._compressor = zstandard.ZstdCompressor(
            level=level,
            threads=THREADS,
            write_checksum=True,  # a flipped bit fails the read, not only sha256
        ).compressobj()

    def compress(self, data: bytes | memoryview) -> bytes:
        """Returns the compressed bytes ready so far (often none)."""
        return self._compressor.compress(data)

    def flush(self) -> bytes:
        """Returns the rest of the stream, ending the frame."""
        return self._compressor.flush()


def is_compressed(path: Path) -> bool:
    """Returns True when the file at `path` starts with a zstd frame. Raises OSError."""
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def decompressed_chunks(path: Path) -> Iterator[bytes]:
    """Yields the decompressed content of the zstd file at `path`, a chunk at a time.

    Raises OSError, or zstandard.ZstdError for a damaged or cut stream (see `ERRORS`).
    """
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    with path.open("rb") as handle:
        while compressed := handle.read(READ_SIZE):
            if decompressor.eof:
                raise zstandard.ZstdError("data after the end of the zstd stream")
            if chunk := decompressor.decompress(compressed):
                yield chunk
    if decompressor.unused_data:
        raise zstandard.ZstdError("data after the end of the zstd stream")
    if not decompressor.eof:
        raise zstandard.ZstdError("the zstd stream is cut short (the file ends before the stream does)")


ERRORS: tuple[type[Exception], ...] = (OSError, zstandard.ZstdError)
