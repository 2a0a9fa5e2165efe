"""Integration fixtures: a 'production' database with an awkward schema on a real cluster, configs
pointing at it, and a guard that fails any test leaving a postgres process or temp dir behind."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.support import leftovers
from tests.support.mailbox import mailbox as mailbox  # a fixture of its own module, re-exported
from verifier.config import Config
from verifier.postgres.throwaway.cluster import TemporaryCluster

AWKWARD_SCHEMA = """
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."OrderLines" ("Id" serial PRIMARY KEY, "Qty" integer NOT NULL DEFAULT 1, note text);
INSERT INTO "Sales"."OrderLines" ("Qty", note) SELECT g % 7, 'line ' || g FROM generate_series(1, 500) g;
CREATE TABLE measurements (id bigserial, at date NOT NULL, value numeric) PARTITION BY RANGE (at);
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE measurements_old PARTITION OF measurements FOR VALUES FROM ('2000-01-01') TO ('2025-01-01')
    PARTITION BY RANGE (at);
CREATE TABLE measurements_old_2024 PARTITION OF measurements_old FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_old_rest PARTITION OF measurements_old DEFAULT;
INSERT INTO measurements (at, value)
    SELECT date '2023-06-01' + (g % 1200), g FROM generate_series(1, 3000) g;
CREATE TABLE cities (name text, population integer);
CREATE TABLE capitals (state char(2)) INHERITS (cities);
INSERT INTO cities SELECT 'city ' || g, g * 1000 FROM generate_series(1, 10) g;
INSERT INTO capitals SELECT 'capital ' || g, g, 'S' || g FROM generate_series(1, 3) g;
CREATE SEQUENCE invoice_numbers START 1000;
SELECT nextval('invoice_numbers') FROM generate_series(1, 5);
CREATE TABLE "weird ""quoted"" table" ("select" integer, "Mixed Case" text);
INSERT INTO "weird ""quoted"" table" VALUES (1, 'a'), (2, 'b');
CREATE UNLOGGED TABLE cache (key text PRIMARY KEY, value text);
INSERT INTO cache VALUES ('k', 'v');
CREATE TABLE empty_table (id integer);
CREATE MATERIALIZED VIEW city_count AS SELECT count(*) FROM cities;
CREATE TYPE mood AS ENUM ('ok', 'meh');
CREATE TABLE moods (m mood);
"""


@dataclass
class SourceDatabase:
    """A database on the shared 'production' cluster, made for one test."""

    cluster: TemporaryCluster
    dbname: str

    def execute(self, statement: str | sql.Composed, params: Any = None) -> list[tuple[Any, ...]]:
        with self.cluster.connect(self.dbname) as connection:
            cursor = connection.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def config(self, repository: Path, **sections: Any) -> Config:
        """Returns a config for this source with `sections` merged in (min_count 1 unless given)."""
        data: dict[str, Any] = {
            "source": {"host": self.cluster.host, "port": self.cluster.port, "dbname": self.dbname, "user": "postgres"},
            "repository": {"path": str(repository)},
            "checks": {"min_count": 1},
        }
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value}
        return Config.model_validate(data)


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fails the test if it leaves a postgres server or one of our temp directories behind."""
    servers_before, dirs_before = leftovers.postgres_servers(), leftovers.temp_dirs()
    yield
    assert leftovers.postgres_servers() - servers_before == set(), "a postgres server was left running"
    assert leftovers.temp_dirs() - dirs_before == set(), "a temp directory was left behind"


@pytest.fixture
def source_db(production: TemporaryCluster) -> Iterator[SourceDatabase]:
    """A fresh database with the awkward schema on the shared 'production' cluster."""
    name = f"app_{secrets.token_hex(3)}"
    with production.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = SourceDatabase(production, name)
    database.execute(AWKWARD_SCHEMA)
    yield database
    with production.connect() as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
