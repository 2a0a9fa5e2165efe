"""How the agent connects to a database: the one way, with libpq's errors mapped to ours.

A `Source` (the production database) gives two things: connection parameters for the agent's own
sessions (the snapshot transaction, counting, fingerprinting) and an `Executor` that runs
`pg_dump`/`pg_dumpall` next to the server (on this host, or inside the production container).
Sandboxes use executors too, for `pg_restore`/`psql`, so the dump and restore code never knows
where a program runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import psycopg

from verifier.errors import SourceUnreachable, one_line
from verifier.process import Executor

_ENVIRONMENT_VARIABLE = {
    "dbname": "PGDATABASE",
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "sslmode": "PGSSLMODE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
}
# What every session on production gets, as pg_dump's own sessions do: no timeout may end the
# snapshot work half-way (a role's `statement_timeout` included: startup options win over role
# settings), and row-level security off, so a policy can never hide rows from a count silently (a
# role that is not exempt gets an error instead, as pg_dump does).
PRODUCTION_OPTIONS = (
    "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c row_security=off"
)


# What a failed statement or connection raises, for modules outside postgres/ that must catch it.
DatabaseError = psycopg.Error


@dataclass(frozen=True)
class ConnectionParams:
    """How to reach one database. `password` is never shown by `repr` or `label`."""

    dbname: str
    host: str | None = None
    port: int = 5432
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    connect_timeout: int = 10
    options: str | None = None  # libpq startup options, e.g. PRODUCTION_OPTIONS

    @property
    def label(self) -> str:
        """Returns `user@host:port/dbname` for humans (no password)."""
        host = self.host or "local socket"
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}/{self.dbname}"

    def psycopg_kwargs(self) -> dict[str, str | int]:
        """Returns keyword arguments for psycopg.connect."""
        kwargs: dict[str, str | int] = {
            "dbname": self.dbname,
            "port": self.port,
            "connect_timeout": self.connect_timeout,
            "application_name": "pg-backup-verifier",
        }
        for key, value in (
            ("host", self.host),
            ("user", self.user),
            ("password", self.password),
            ("sslmode", self.sslmode),
            ("options", self.options),
        ):
            if value:
                kwargs[key] = value
        return kwargs

    def libpq_environment(self) -> dict[str, str]:
        """Returns PG* variables for a child program: the password travels here, never on argv."""
        return {_ENVIRONMENT_VARIABLE[key]: str(value) for key, value in self.psycopg_kwargs().items()}

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
        """Returns a new connection. Raises SourceUnreachable with libpq's one-line reason."""
        try:
            connection = psycopg.connect(**self.psycopg_kwargs(), autocommit=autocommit)  # type: ignore[arg-type]
        except psycopg.OperationalError as error:
            reason = one_line(error) or "connection failed"
            raise SourceUnreachable(f"cannot connect to {self.label}: {reason}") from None
        if self.options and connection.info.server_version >= 170000:
            connection.execute("SET transaction_timeout = 0")  # unknown before 17: not a startup option
        return every_byte_readable(connection)

    def connect_plain(self) -> psycopg.Connection[tuple[object, ...]]:
        """Returns a new autocommit connection. Raises DatabaseError as libpq reports it (no mapping)."""
        return every_byte_readable(psycopg.connect(**self.psycopg_kwargs(), autocommit=True))  # type: ignore[arg-type]


def every_byte_readable(connection: psycopg.Connection[tuple[object, ...]]) -> psycopg.Connection[tuple[object, ...]]:
    """Returns `connection`, made to read a SQL_ASCII database as text. Raises psycopg.Error.

    A SQL_ASCII database holds bytes in no particular encoding (often some valid in none), and
    psycopg hands its text out as `bytes`, which every name and setting read then mangles (`b'ISO,
    MDY'`). LATIN1 maps each byte to one character and back, and PostgreSQL neither converts nor
    rejects any byte between a SQL_ASCII database and a LATIN1 client: names read are text, and the
    same names sent back are the same bytes. Any other database is left as it is (its encoding is
    a real one, converted by the server as usual).
    """
    info = connection.info
    if (
        info.parameter_status("server_encoding") == "SQL_ASCII"
        and info.parameter_status("client_encoding") == "SQL_ASCII"
    ):
        autocommit = connection.autocommit
        try:
            connection.autocommit = True  # a fresh connection: a session setting, never inside a transaction
            connection.execute("SET client_encoding TO 'LATIN1'")
            connection.autocommit = autocommit
        except psycopg.Error:
            connection.close()
            raise
    return connection


@dataclass(frozen=True)
class Source:
    """The resolved production database: connection parameters, the executor next to it, and
    where its credentials came from (for `doctor`; never the values)."""

    params: ConnectionParams
    executor: Executor | None  # None: choose a local pg_dump matching the server's version
    description: str
    credentials_from: str = "config"
    image: str | None = None


def server_data_directory(params: ConnectionParams) -> str | None:
    """Returns the server's `data_directory`, or None when it cannot be asked (any database error)."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(**params.psycopg_kwargs()) as connection:  # type: ignore[arg-type]
        row = every_byte_readable(connection).execute("SHOW data_directory").fetchone()
        if row:
            return str(row[0])
    return None
