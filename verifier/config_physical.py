"""The `physical:` section: physical backups (pgBackRest) restored to a known instant and proven.

Absent, the feature is off and nothing else changes (docs/pitr, issue 24).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from verifier.config_section import Duration, Section


class PhysicalConfig(Section):
    """Which physical backups to prove, through which tool, to which instant."""

    tool: Literal["pgbackrest"] = "pgbackrest"
    stanza: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = Field(
        description="pgBackRest's stanza for the source cluster"
    )
    config: Path | None = Field(default=None, description="pgBackRest's own config file; default: its own default")
    repo: Annotated[int, Field(ge=1, le=256)] | None = Field(
        default=None, description="which pgBackRest repository; default: pgBackRest's choice"
    )
    target: Literal["exact", "restore-point", "latest"] = Field(
        default="exact",
        description="exact: a logical slot's snapshot (wal_level=logical); restore-point: a named restore point; "
        "latest: the end of the archive",
    )
    amcheck: Literal["full", "sample", "off"] = Field(
        default="full",
        description="pg_amcheck on the restored cluster: full (heap and every B-tree, heapallindexed), "
        "sample (every B-tree's structure only), off",
    )
    instant_wait: Duration = Field(
        default=300.0,
        description="how long the exact instant may wait for transactions running when it begins to end",
    )
    archive_wait: Duration = Field(default=300.0, description="how long to wait for the instant's WAL to be archived")
    recovery_timeout: Duration = Field(default=3600.0, description="how long recovery to the instant may take")
