"""What every config section shares: the `Section` base (unknown keys are errors, values immutable)
and the value types sections have in common: secrets read from `file:/path`, and durations.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(value: Any) -> Any:
    """Returns `file:/path` resolved to the file's content without its trailing newline, other values as they are.

    Raises ValueError (which pydantic reports with the YAML path) when the file cannot be read.
    """
    if isinstance(value, str) and value.startswith("file:"):
        path = Path(value.removeprefix("file:"))
        try:
            return path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as error:
            raise ValueError(f"cannot read secret file {path}: {error.strerror}") from None
    return value


_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d)?$")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _seconds(value: Any) -> Any:
    """Turns '10m', '2s', '6h', '500ms' or a number of seconds into seconds (float)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m or 6h")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if match is None:
        raise ValueError(f"expected a duration such as 30s, 10m or 6h, got {value!r}")
    return int(match.group(1)) * _DURATION_SECONDS[match.group(2)]


Duration = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
"""Seconds, written in the YAML as 30s, 10m, 6h, 1d, 500ms or a plain number of seconds."""
