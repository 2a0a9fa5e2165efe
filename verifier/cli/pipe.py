"""Standard output whose reader may leave early (`verifier list | head -1`).

A reader that has what it wanted and closes the pipe is no error of ours: what is still to print is
discarded and the command ends with its own exit code. Without this the next write (or the flush at
exit) raises BrokenPipeError: a traceback and exit 1, a WARNING to a script that only wanted a line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO


class ReaderMayLeave:
    """Wraps a text stream: a write or flush that meets a closed pipe sends this and all later output
    to /dev/null instead of raising."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Writes `text`; after the reader left, discards it. Returns its length."""
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard_from_now_on()
            return len(text)

    def flush(self) -> None:
        """Flushes; after the reader left, discards what was buffered."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard_from_now_on()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _discard_from_now_on(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())  # the buffered rest (and the flush at exit) go nowhere
        finally:
            os.close(devnull)


@contextlib.contextmanager
def quiet_when_the_reader_leaves() -> Iterator[None]:
    """Makes sys.stdout a ReaderMayLeave of itself while the body runs, flushing it at the end (so a
    reader that left is no error at exit either)."""
    stream = sys.stdout
    if stream is None or isinstance(stream, ReaderMayLeave):
        yield
        return
    wrapper = ReaderMayLeave(stream)
    sys.stdout = wrapper
    try:
        yield
        wrapper.flush()
    finally:
        sys.stdout = stream
