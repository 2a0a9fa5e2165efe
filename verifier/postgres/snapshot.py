"""Where every comparison starts: the source server's identity, and one exported snapshot.

The dump (`pg_dump --snapshot`), the snapshot's row counts and fingerprint, and an exact recount of
production all read the database as of one `REPEATABLE READ` transaction whose snapshot is exported
here; parallel sessions join it with `SET TRANSACTION SNAPSHOT` (see `catalog.count_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.postgres.catalog import Connection


def export_snapshot(session: Connection) -> str:
    """Opens a read-only REPEATABLE READ transaction on `session` and returns its exported snapshot id
    ("" when the server returned none). The caller ends the transaction. Raises psycopg.Error."""
    session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    row = session.execute("SELECT pg_export_snapshot()").fetchone()
    return str(row[0]) if row else ""


_SERVER_INFO_SQL = """
SELECT current_setting('server_version'), current_setting('server_version_num')::int,
       pg_encoding_to_char(d.encoding), d.datcollate, d.datctype
FROM pg_database d WHERE d.datname = current_database()
"""


@dataclass(frozen=True)
class ServerInfo:
    """The source server's version and the database's encoding and locale."""

    version: str
    version_num: int
    encoding: str
    collate: str
    ctype: str

    @property
    def major(self) -> int:
        """Returns the major version (15 for 150018)."""
        return self.version_num // 10000


def server_info(connection: Connection) -> ServerInfo:
    """Returns the connected server's version and database locale. Raises psycopg.Error."""
    row = connection.execute(_SERVER_INFO_SQL).fetchone()
    assert row is not None
    version, number, encoding, collate, ctype = row
    return ServerInfo(str(version).split()[0], int(number), str(encoding), str(collate), str(ctype))  # type: ignore[call-overload]
