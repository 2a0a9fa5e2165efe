"""Databases as real applications leave them, for the real-world verdict tests.

An application role that is not a superuser owns its own schema, which is first on its
`search_path`; a second role is named by row-level-security policies and grants; an extension; a
leftover invalid index from a failed `CREATE UNIQUE INDEX CONCURRENTLY`; a small busy job queue.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from verifier.config import Config
from verifier.postgres.throwaway.cluster import TemporaryCluster

# Run as the application role, connected to its database, with its own search_path (app, public).
APPLICATION_SCHEMA = """
CREATE SCHEMA app;
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10, 2) DEFAULT 0,
                     address_city text, created_at timestamptz DEFAULT now());
INSERT INTO orders (customer, total, address_city)
    SELECT 'customer ' || (g % 50), g % 300, 'city ' || (g % 7) FROM generate_series(1, 3000) g;
CREATE FUNCTION order_count(min_total integer) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM orders WHERE total >= min_total $$;
CREATE VIEW big_orders AS SELECT id, customer, total FROM orders WHERE total > 100;
CREATE TYPE address AS (street text, city text);
CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);
CREATE TABLE payments (id bigserial PRIMARY KEY, order_id integer REFERENCES orders (id),
                       amount positive_amount NOT NULL, billing address);
INSERT INTO payments (order_id, amount, billing) SELECT g, g, ROW('street', 'city')::address
    FROM generate_series(1, 500) g;
CREATE TABLE jobs (id bigserial PRIMARY KEY, state text NOT NULL DEFAULT 'queued');
INSERT INTO jobs (state) SELECT 'queued' FROM generate_series(1, 20);
CREATE TABLE documents (id integer PRIMARY KEY, visibility text NOT NULL, body text);
INSERT INTO documents SELECT g, CASE WHEN g % 2 = 0 THEN 'public' ELSE 'private' END, 'text ' || g
    FROM generate_series(1, 40) g;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE orders IS 'one row per order';
CREATE INDEX orders_customer ON orders (customer);
CREATE UNLOGGED TABLE sessions (token text PRIMARY KEY, data jsonb);
INSERT INTO sessions SELECT md5(g::text), '{}' FROM generate_series(1, 30) g;
"""

# Statements naming the anonymous role: formatted with its identifier.
ANONYMOUS_ROLE_SQL = (
    "CREATE POLICY public_documents ON documents FOR SELECT TO {anon} USING (visibility = 'public')",
    "GRANT USAGE ON SCHEMA app TO {anon}",
    "GRANT SELECT ON documents TO {anon}",
    "GRANT SELECT ON big_orders TO {anon}",
)


@dataclass
class ApplicationDatabase:
    """A database owned by a non-superuser application role on the shared 'production' cluster."""

    cluster: TemporaryCluster
    dbname: str
    owner: str
    anonymous: str
    extra_roles: list[str] = field(default_factory=list)

    def execute(self, statement: str | sql.Composed, params: Any = None, *, as_owner: bool = True) -> list[Any]:
        """Runs one statement as the application role (or the superuser) and returns its rows."""
        kwargs = self.cluster.connection_kwargs(self.dbname)
        if as_owner:
            kwargs["user"] = self.owner
        with psycopg.connect(**kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
            cursor = connection.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def config(self, repository: Path, **sections: Any) -> Config:
        """Returns a config connecting as the application role, `sections` merged in (min_count 1)."""
        return owner_config(self.cluster, self.dbname, self.owner, repository, **sections)


def owner_config(cluster: TemporaryCluster, dbname: str, owner: str, repository: Path, **sections: Any) -> Config:
    """Returns a config dumping `dbname` on `cluster` as the role `owner`, `sections` merged in (min_count 1)."""
    data: dict[str, Any] = {
        "source": {"host": cluster.host, "port": cluster.port, "dbname": dbname, "user": owner},
        "repository": {"path": str(repository)},
        "checks": {"min_count": 1},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return Config.model_validate(data)


def create_application_database(cluster: TemporaryCluster) -> ApplicationDatabase:
    """Creates the roles and the database with its schema; returns it (drop it with `drop`)."""
    suffix = secrets.token_hex(3)
    database = ApplicationDatabase(cluster, f"shop_{suffix}", f"shop_app_{suffix}", f"web_anon_{suffix}")
    owner, anonymous = sql.Identifier(database.owner), sql.Identifier(database.anonymous)
    with cluster.connect() as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(owner))
        connection.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(anonymous))
        connection.execute(sql.SQL("ALTER ROLE {} SET search_path = app, public").format(owner))
        connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database.dbname), owner))
    with cluster.connect(database.dbname) as connection:
        connection.execute("CREATE EXTENSION pgcrypto")  # installed by the superuser, as hosting panels do
    database.execute(APPLICATION_SCHEMA)
    for statement in ANONYMOUS_ROLE_SQL:
        database.execute(sql.SQL(statement).format(anon=anonymous))  # type: ignore[arg-type]
    return database


def leave_invalid_index(database: ApplicationDatabase) -> None:
    """Leaves the invalid index a failed `CREATE UNIQUE INDEX CONCURRENTLY` leaves (duplicates exist)."""
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        database.execute("CREATE UNIQUE INDEX CONCURRENTLY orders_customer_unique ON orders (customer)")
    rows = database.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.orders_customer_unique'::regclass")
    assert rows == [(False,)], "the failed concurrent build should have left an invalid index"


def drop_application_database(database: ApplicationDatabase) -> None:
    """Drops the database and its roles."""
    with database.cluster.connect() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database.dbname)))
        for role in (database.owner, database.anonymous, *database.extra_roles):
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
