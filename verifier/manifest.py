"""The backup manifest: a JSON file beside each dump saying what it holds and how to check it.

Written last, after the dump is complete and renamed, so a manifest always describes a whole file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_VERSION = 3
"""2: the schema fingerprint pins search_path and holds owners, grants and policies; roles listed.
3: printed definitions (CHECKs, defaults, indexes, view queries, domain and policy expressions) are
objects of their own, their text kept in `schema_texts`, so that one printed differently after a
restore is parsed again before it counts as a difference."""
FINGERPRINT_VERSION = 3
Format = Literal["custom", "directory", "plain", "physical"]  # physical: a pgBackRest backup, never stored here


class FileEntry(BaseModel):
    """One file of a backup, relative to the repository: size, sha256, and sha256 per chunk.

    The chunk hashes let a damaged file be reported by byte range, not just 'checksum mismatch'.
    """

    model_config = ConfigDict(extra="ignore")

    path: str
    size: int
    sha256: str
    chunk_size: int
    chunk_sha256: list[str] = Field(default_factory=list)


class TableCount(BaseModel):
    """A table's exact row count in the dump's snapshot."""

    schema_name: str = Field(alias="schema")
    table: str
    rows: int

    model_config = ConfigDict(populate_by_name=True)


class SourceInfo(BaseModel):
    """Which database was dumped (never its password)."""

    label: str
    dbname: str
    server_version: str
    server_version_num: int
    encoding: str = "UTF8"
    collate: str = ""
    ctype: str = ""

    @property
    def major(self) -> int:
        """Returns the server's major version (15 for 150018)."""
        return self.server_version_num // 10000


class Manifest(BaseModel):
    """What one backup holds, as measured in the snapshot it was taken in. Besides these fields, each kind
    of evidence keeps its own section, a top-level key it declares and types itself
    (`postgres/evidence/section.py`: `contents`, `sequences`, `objects`, `database`); kept as read, and
    written back, by `extra="allow"`."""

    model_config = ConfigDict(extra="allow")

    manifest_version: int = MANIFEST_VERSION
    name: str
    format: Format
    created_at: datetime
    completed_at: datetime
    tool_version: str
    pg_dump_version: str
    source: SourceInfo
    snapshot_id: str
    # the LSN the snapshot is the database at: a replication slot's consistent point, when one snapshot served
    # the dump and the physical proof (`verifier run` with physical.target exact); None for a snapshot of its own
    snapshot_lsn: str | None = None
    files: list[FileEntry]
    dump_path: str
    globals_path: str | None = None
    row_counts: list[TableCount]
    schema_objects: dict[str, str]
    schema_fingerprint: str
    schema_texts: dict[str, str] = Field(default_factory=dict)  # printed definitions' texts, by object key
    extensions: dict[str, str] = Field(default_factory=dict)  # name → version, compared apart from the schema
    unlogged_not_dumped: list[str] = Field(default_factory=list)  # from a standby: counted as 0, as dumped
    roles: list[str] = Field(default_factory=list)  # created (no password, no login) in the sandbox before a restore
    dump_seconds: float
    notes: list[str] = Field(default_factory=list)  # what the backup lacks, e.g. roles not saved
    dump_warnings: list[str] = Field(default_factory=list)  # pg_dump's own warnings, as it printed them
    roles_without_passwords: bool = False  # pg_dumpall saved the roles without their passwords (not a superuser)

    @property
    def size_bytes(self) -> int:
        """Returns the total size of the backup's files."""
        return sum(entry.size for entry in self.files)

    def counts_by_table(self) -> dict[tuple[str, str], int]:
        """Returns {(schema, table): rows}."""
        return {(count.schema_name, count.table): count.rows for count in self.row_counts}

    def write(self, path: Path) -> None:
        """Writes the manifest atomically (temp file, fsync, rename), mode 0600. Raises OSError."""
        partial = path.with_name(path.name + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(self.model_dump_json(indent=2, by_alias=True))
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        partial.rename(path)


def read_manifest(path: Path) -> Manifest:
    """Returns the manifest stored at `path`. Raises ValueError if it is unreadable or malformed."""
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, ValidationError) as error:
        raise ValueError(f"manifest {path} is unreadable: {str(error).splitlines()[0]}") from error
