"""Reading a plain SQL dump (`.sql` or `.sql.gz`) as pg_dump wrote it, streamed, never unpacked to disk.

`PlainDump` checks what a file claims before anything of it runs (a `.gz` name on a gzip stream,
something in it, pg_dump's header), yields the SQL in ~1 MiB batches recording where each object's
section starts (to attribute psql's errors), and notes pg_dump's completion trailer: a dump without
it was cut (a killed cron job, a full disk) even when every statement in it succeeds.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

BATCH_BYTES = 1024 * 1024
HEADER_BYTES = 64 * 1024
_HEADER = re.compile(rb"^-- PostgreSQL database (cluster )?dump$", re.MULTILINE)
_TRAILERS = (b"-- PostgreSQL database dump complete\n", b"-- PostgreSQL database cluster dump complete\n")
_OBJECT_COMMENT = re.compile(
    rb"^-- (?:Data for )?Name: (?P<name>[^;]*); Type: (?P<type>[^;]*); Schema: (?P<schema>[^;]*);"
)
_COPY_START = re.compile(rb"^COPY .* FROM stdin;\n?$")
READ_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile)


class PlainDump:
    """One plain SQL file, read once from start to end. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.objects: list[tuple[int, str]] = []  # (line number, object) of each `-- Name:` header
        self.lines = 0
        self.complete = False  # pg_dump's completion trailer was read
        self._raw = path.open("rb")
        magic = self._raw.read(2)
        self._raw.seek(0)
        self.gzipped = magic == b"\x1f\x8b"
        self._stream: BinaryIO = gzip.GzipFile(fileobj=self._raw) if self.gzipped else self._raw  # type: ignore[assignment]
        self._head = b""
        self._unread = b""  # what problem_before_start read and batches() has not yielded yet

    def __enter__(self) -> PlainDump:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._raw.close()

    def problem_before_start(self) -> str | None:
        """Returns why the file is not a plain dump pg_dump wrote (nothing of it may run), or None.

        Reads the first block, which `batches()` then yields first. Raises the READ_ERRORS.
        """
        if self.path.name.endswith(".gz") and not self.gzipped:
            return f"{self.path.name} is not gzip-compressed, though its name says so"
        self._head = self._unread = self._stream.read(HEADER_BYTES)
        if not self._head:
            return f"{self.path.name} is empty: the dump that wrote it failed before its first byte"
        if _HEADER.search(self._head) is None:
            return f"{self.path.name} is not a pg_dump SQL file (no '-- PostgreSQL database dump' header)"
        return None

    def server_major(self) -> int | None:
        """Returns the source server's major version from the header, or None (after `problem_before_start`)."""
        match = re.search(rb"-- Dumped from database version (\d+)", self._head)
        return int(match.group(1)) if match else None

    def encoding(self) -> str | None:
        """Returns the encoding the dump's text is in (its `SET client_encoding`: the source
        database's, unless pg_dump was given another), or None (after `problem_before_start`)."""
        match = re.search(rb"^SET client_encoding = '([A-Za-z0-9_]+)';$", self._head, re.MULTILINE)
        return match.group(1).decode() if match else None

    def problem_at_end(self) -> str | None:
        """Returns 'incomplete dump (ends at line N)' when the trailer was not read, else None.

        Call after `batches()` ran to the end.
        """
        if self.complete:
            return None
        return (
            f"incomplete dump (ends at line {self.lines:,}): pg_dump's '-- PostgreSQL database dump complete' "
            "trailer is missing, the file was cut"
        )

    def read_error(self, error: BaseException) -> str:
        """Returns one line saying where and why the file could not be read to the end."""
        text = str(error) or type(error).__name__
        if isinstance(error, EOFError):
            text = "compressed file ended before the end-of-stream marker (truncated)"
        return f"{self.path.name} is not readable to the end: {text} (near byte {self._raw.tell():,})"

    def batches(self) -> Iterator[bytes]:
        """Yields the SQL in ~1 MiB batches, recording object headers, line count and the trailer.

        COPY data (nearly all of a dump) is passed through in blocks up to its `\\.` terminator
        without splitting it into lines; only the statements between are looked at line by line.
        Raises the READ_ERRORS (gzip CRC or length wrong, truncated stream).
        """
        pending = b""
        in_copy = False
        first, self._unread = self._unread, b""
        while True:
            block, first = (first, b"") if first else (self._stream.read(BATCH_BYTES), b"")
            data = pending + block
            if not block:
                if data:
                    if not in_copy:
                        self._statement_line(data, self.lines + 1)
                    self.lines += 1
                    yield data
                return
            output: list[bytes] = []
            position = 0
            while position < len(data):
                if in_copy:
                    if data.startswith(b"\\.\n", position):
                        terminator = position
                    else:
                        found = data.find(b"\n\\.\n", position)
                        terminator = found + 1 if found >= 0 else -1
                    if terminator >= 0:
                        end = terminator + 3  # through the terminator line
                        in_copy = False
                    else:  # whole lines only: the partial last one may be the start of the terminator
                        last_newline = data.rfind(b"\n", position)
                        if last_newline < position:
                            break
                        end = last_newline + 1
                    chunk = data[position:end]
                    self.lines += chunk.count(b"\n")
                    output.append(chunk)
                    position = end
                    continue
                newline = data.find(b"\n", position)
                if newline < 0:
                    break
                line = data[position : newline + 1]
                self.lines += 1
                if _COPY_START.match(line):
                    in_copy = True
                else:
                    self._statement_line(line, self.lines)
                output.append(line)
                position = newline + 1
            pending = data[position:]
            yield b"".join(output)

    def _statement_line(self, line: bytes, number: int) -> None:
        if not line.startswith(b"--"):
            return
        if line in _TRAILERS:
            self.complete = True
            return
        header = _OBJECT_COMMENT.match(line)
        if header is not None:
            schema = header.group("schema").decode(errors="replace")
            name = header.group("name").decode(errors="replace")
            kind = header.group("type").decode(errors="replace")
            self.objects.append((number, f"{kind} {schema + '.' if schema != '-' else ''}{name}"))
