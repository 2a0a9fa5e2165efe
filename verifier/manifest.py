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
Format = Literal["custom", "directory", "plain"]


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


class TableChecksum(BaseModel):
    """A table's content checksum in the dump's snapshot: how it was hashed (`full`, `sample` by the
    primary key `key`, or `whole`), all its rows, the rows hashed, the sum of their 64-bit hashes
    mod 2^64 (hex), and the seconds the scan took on production."""

    schema_name: str = Field(alias="schema")
    table: str
    mode: Literal["full", "sample", "whole"]
    key: list[str] = Field(default_factory=list)
    sample_percent: float = 100.0
    bucket: Literal["modulo", "md5"] = "md5"  # sample: the key modulo 10000 (one integer column) or md5 of it
    search_path: str | None = None  # production's, set on both sides; None: pg_catalog (older manifests)
    row_hash: Literal["md5", "hashtext"] = "md5"  # each row's hash: hashtextextended from 0.2; md5 in older manifests
    rows: int
    hashed_rows: int
    checksum: str
    seconds: float

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


class LargeObjects(BaseModel):
    """The large objects in the dump's snapshot: how many, and a checksum of those the dumping role
    may read (sum mod 2^64 of a 64-bit md5 slice of each object's oid and contents' md5), with each
    object's hash when there are few enough to name a missing or changed one."""

    count: int
    hashed: int  # readable by the dumping role, so hashed
    checksum: str  # 16 hex digits
    unreadable: list[int] = Field(default_factory=list)  # oids the role may not read (the first 100)
    unreadable_count: int = 0
    hashes: dict[str, str] | None = None  # oid → 16 hex digits; None: too many to keep
    error: str | None = None  # why the contents could not be hashed (only `count` holds)
    seconds: float = 0.0


class MaterializedView(BaseModel):
    """A materialized view in the dump's snapshot: populated or not, and the rows its query returns
    there (what the restore's REFRESH must produce; None when it could not be counted, `note` says why).
    `volatile`: its query reads the clock or randomness, so a restored count may differ."""

    schema_name: str = Field(alias="schema")
    name: str
    populated: bool
    rows: int | None = None
    volatile: bool = False
    note: str = ""

    model_config = ConfigDict(populate_by_name=True)


class SnapshotObjects(BaseModel):
    """What the row counts do not see, read in the dump's snapshot: large objects, materialized views,
    and every constraint with whether it is validated (the key as the schema fingerprint names it)."""

    large_objects: LargeObjects
    materialized_views: list[MaterializedView] = Field(default_factory=list)
    constraints: dict[str, bool] = Field(default_factory=dict)
    seconds: float = 0.0


class Publication(BaseModel):
    """A publication in the dump's snapshot: what it publishes (every table, or these tables and
    schemas' tables) and which changes."""

    name: str
    all_tables: bool = False
    actions: str = ""  # e.g. "insert, update, delete, truncate"
    via_root: bool = False
    tables: list[str] = Field(default_factory=list)  # qualified, quoted where needed
    schemas: list[str] = Field(default_factory=list)


class DatabaseProperties(BaseModel):
    """What belongs to the database itself rather than to its schemas, read in the dump's snapshot:
    `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` settings (each "name=value" as
    pg_db_role_setting holds it), the database's privileges ("grantee:PRIVILEGE", "*" when grantable,
    "PUBLIC" for everyone; the default ones included), its comment and owner, its publications, and
    its subscriptions' names (None when the role may not read them)."""

    owner: str
    settings: list[str] = Field(default_factory=list)
    role_settings: dict[str, list[str]] = Field(default_factory=dict)
    grants: list[str] = Field(default_factory=list)
    default_grants: bool = True  # never granted nor revoked: pg_dump writes no GRANT/REVOKE
    comment: str | None = None
    publications: list[Publication] = Field(default_factory=list)
    subscriptions: list[str] | None = Field(default_factory=list)


class Manifest(BaseModel):
    """What one backup holds, as measured in the snapshot it was taken in."""

    model_config = ConfigDict(extra="ignore")

    manifest_version: int = MANIFEST_VERSION
    name: str
    format: Format
    created_at: datetime
    completed_at: datetime
    tool_version: str
    pg_dump_version: str
    source: SourceInfo
    snapshot_id: str
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
    contents: list[TableChecksum] | None = None  # None: not taken (verify.content off, or an older agent)
    sequences: dict[str, int] | None = None  # sequence → next value, read before pg_dump; None: older agent
    objects: SnapshotObjects | None = None  # None: an older agent (not compared)
    database: DatabaseProperties | None = None  # None: an older agent (not compared)
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
