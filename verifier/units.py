"""Human units for sizes, durations and ages, shared by every renderer and the retention table."""

from __future__ import annotations

from datetime import timedelta


def format_bytes(size: float) -> str:
    """Returns a size in binary units, e.g. "512 B", "1.5 MiB"."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_seconds(seconds: float) -> str:
    """Returns a duration as "850 ms", "12.3 s", "4m 05s" or "1h 02m"."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_age(age: timedelta) -> str:
    """Returns an age as "3d 4h", "5h 10m" or "in the future"."""
    seconds = int(age.total_seconds())
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {rest // 60}m"


def plural(count: int, noun: str) -> str:
    """Returns `noun` as it goes with `count`: plural(1, "table") is "table", otherwise "tables"."""
    return noun if count == 1 else f"{noun}s"


def mebibytes(size: int) -> str:
    """Returns `size` bytes as e.g. '12.5 MiB' (the unit disk-space messages use)."""
    return f"{size / 1048576:.1f} MiB"
