"""WAL positions and segment names: '0/41203C0' ↔ integers, and the segments between two positions."""

from __future__ import annotations

from collections.abc import Iterator

SEGMENT_NAME_LENGTH = 24


def lsn_value(lsn: str) -> int:
    """Returns '0/41203C0' as an integer. Raises ValueError for anything else."""
    high, _, low = lsn.partition("/")
    if not high or not low:
        raise ValueError(f"not an LSN: {lsn!r}")
    return (int(high, 16) << 32) | int(low, 16)


def segment_name(timeline: int, position: int, segment_bytes: int) -> str:
    """Returns the WAL file name holding byte `position` on `timeline` (as pg_walfile_name names it)."""
    number = position // segment_bytes
    per_id = 0x100000000 // segment_bytes
    return f"{timeline:08X}{number // per_id:08X}{number % per_id:08X}"


def segment_number(name: str, segment_bytes: int) -> int:
    """Returns the segment's number (its position // segment_bytes) from its name. Raises ValueError."""
    if len(name) < SEGMENT_NAME_LENGTH:
        raise ValueError(f"not a WAL segment name: {name!r}")
    per_id = 0x100000000 // segment_bytes
    return int(name[8:16], 16) * per_id + int(name[16:24], 16)


def segments_between(first: str, last: str, segment_bytes: int) -> Iterator[str]:
    """Yields the segment names from `first` to `last` inclusive, on `first`'s timeline."""
    timeline = int(first[:8], 16)
    for number in range(segment_number(first, segment_bytes), segment_number(last, segment_bytes) + 1):
        yield segment_name(timeline, number * segment_bytes, segment_bytes)
