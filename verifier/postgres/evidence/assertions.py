"""Running one user assertion (a single SELECT) on the restored copy: read-only, under a statement
timeout, as a role that can read everything and own nothing where the sandbox lets us create one.

The restored copy is throwaway, but the SQL is the user's and runs on data restored from a file: the
READ ONLY transaction keeps it from changing what the other checks look at, the timeout keeps it from
holding the run, the reader role keeps it from superuser-only functions.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from verifier.errors import one_line
from verifier.postgres.catalog import Connection

logger = logging.getLogger(__name__)

READER_ROLE = "pgbv_assertion_reader"
_READ_ALL_DATA_SINCE = 140000  # pg_read_all_data is new in PostgreSQL 14


class AssertionFailed(Exception):
    """The assertion's query could not give its one value: an error, the timeout, or not one row and one column."""


def prepare_reader(connection: Connection) -> str | None:
    """Returns the NOLOGIN role (holding pg_read_all_data, bypassing row security so it sees every row) the
    assertions run as, created on `connection` (autocommit) when it is a superuser's on PostgreSQL 14 or
    later; None otherwise (a server sandbox, or the role could not be made: its own user then runs them,
    still read-only and timed). Never raises for a refused role; raises psycopg.Error when the
    connection is lost."""
    try:
        row = connection.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if row is None or not row[0] or connection.info.server_version < _READ_ALL_DATA_SINCE:
            return None
        exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone()
        if exists is None:
            connection.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN BYPASSRLS IN ROLE pg_read_all_data").format(sql.Identifier(READER_ROLE))
            )
    except psycopg.errors.InsufficientPrivilege as error:
        logger.warning(
            "assertions: no read-only role could be created (%s); running as the sandbox's user", one_line(error)
        )
        return None
    return READER_ROLE


def evaluate(connection: Connection, query: str, *, timeout_seconds: float, role: str | None) -> str | None:
    """Runs `query` on `connection` (autocommit) in a READ ONLY transaction with `timeout_seconds` as its
    statement_timeout, as `role` when given. Returns the text form of its one value (None for NULL).
    Raises AssertionFailed naming the error, the timeout, or the shape of the result."""
    try:
        connection.execute("BEGIN TRANSACTION READ ONLY")
        try:
            connection.execute(
                "SELECT set_config('statement_timeout', %s, true)", (f"{max(1, round(timeout_seconds * 1000))}ms",)
            )
            if role is not None:
                connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cursor = connection.execute(query.encode())  # the user's text: bytes, so no placeholder is parsed
            result = cursor.pgresult
            if result is None or result.nfields != 1 or result.ntuples != 1:
                rows, columns = (result.ntuples, result.nfields) if result is not None else (0, 0)
                raise AssertionFailed(f"returned {rows} row(s) of {columns} column(s), expected one row of one column")
            value = result.get_value(0, 0)
        finally:
            connection.execute("ROLLBACK")
    except psycopg.errors.QueryCanceled:
        raise AssertionFailed(f"ran longer than its timeout ({timeout_seconds:g} s) and was cancelled") from None
    except psycopg.Error as error:
        raise AssertionFailed(one_line(error)) from None
    return None if value is None else value.decode(connection.info.encoding, errors="replace")
