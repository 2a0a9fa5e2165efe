"""The "production" databases of bench_speed.py, generated inside the server (no row crosses the wire).

`bench`: `pgbench -i` at a scale, plus three tables sized against pgbench's ≈ 15 MB per scale unit:
`documents` (jsonb + text of words drawn from a vocabulary, moderately compressible, ≈ 12 %),
`attachments` (bytea, half random bytes, ≈ 5 %) and `events` (seven indexes, ≈ 5 %).
`many`: N small tables (a primary key, 1-5 rows) in 100 schemas, as multi-tenant apps have, made by one
DO block that commits every 500 tables (one transaction could not hold all their locks).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from _speed_measure import BenchError, client_environment, run_pipeline
from psycopg import sql

from verifier.postgres.throwaway.cluster import TemporaryCluster

DOCUMENT_ROWS_PER_SCALE = 3000
ATTACHMENT_ROWS_PER_SCALE = 700
EVENT_ROWS_PER_SCALE = 3000
SCHEMAS = 100
_VOCABULARY = (
    "account invoice payment customer order shipment delivery warehouse product price discount tax refund "
    "subscription renewal trial upgrade downgrade support ticket priority status pending approved rejected "
    "region market campaign report summary quarterly monthly weekly daily balance credit debit transfer "
    "currency exchange"
)

_DOCUMENTS = """
CREATE TABLE documents (
    id bigint PRIMARY KEY,
    created_at timestamptz NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    attributes jsonb NOT NULL
);
INSERT INTO documents
SELECT i,
       timestamptz '2024-01-01' + i * interval '37 seconds',
       initcap(words[1 + i % 40]) || ' ' || words[1 + (i * 7) % 40] || ' ' || i,
       (SELECT string_agg(words[1 + floor(random() * array_length(words, 1))::int + 0 * k], ' ')
          FROM generate_series(1, 40 + i % 30) AS k),
       jsonb_build_object(
           'customer', 'customer-' || (i % 5000),
           'status', (ARRAY['new', 'paid', 'shipped', 'returned'])[1 + i % 4],
           'amount', round((random() * 1000)::numeric, 2),
           'tags', jsonb_build_array(words[1 + i % 40], words[1 + (i * 3) % 40]),
           'reference', md5(i::text))
FROM generate_series(1, {rows}) AS i, (SELECT string_to_array({vocabulary}, ' ') AS words) AS vocabulary
"""
_ATTACHMENTS = """
CREATE TABLE attachments (id bigint PRIMARY KEY, name text NOT NULL, content bytea NOT NULL);
INSERT INTO attachments
SELECT i, 'file-' || i || '.bin',
       (SELECT string_agg(uuid_send(gen_random_uuid()), ''::bytea) FROM generate_series(1, 32 + 0 * i))
       || convert_to(repeat('header:' || (i % 100) || ';', 60), 'UTF8')
FROM generate_series(1, {rows}) AS i
"""
_EVENTS = """
CREATE TABLE events (
    id bigint PRIMARY KEY,
    account_id integer NOT NULL,
    kind text NOT NULL,
    happened_at timestamptz NOT NULL,
    amount numeric(12, 2) NOT NULL,
    token uuid NOT NULL,
    region smallint NOT NULL
);
INSERT INTO events
SELECT i, (random() * 100000)::int, (ARRAY['login', 'view', 'click', 'buy', 'refund', 'logout'])[1 + i % 6],
       timestamptz '2025-01-01' - random() * interval '365 days', round((random() * 500)::numeric, 2),
       gen_random_uuid(), i % 20
FROM generate_series(1, {rows}) AS i;
CREATE INDEX events_account ON events (account_id);
CREATE INDEX events_kind ON events (kind);
CREATE INDEX events_happened ON events (happened_at);
CREATE INDEX events_amount ON events (amount);
CREATE UNIQUE INDEX events_token ON events (token);
CREATE INDEX events_region_happened ON events (region, happened_at);
"""
_MANY_TABLES = """
DO $$
BEGIN
    FOR schema_number IN 0..{schemas} - 1 LOOP
        EXECUTE format('CREATE SCHEMA tenant_%s', schema_number);
    END LOOP;
    FOR table_number IN 0..{tables} - 1 LOOP
        EXECUTE format(
            'CREATE TABLE tenant_%s.items_%s (id serial PRIMARY KEY, name text NOT NULL, '
            'updated_at timestamptz NOT NULL DEFAULT now())', table_number % {schemas}, table_number);
        EXECUTE format(
            'INSERT INTO tenant_%s.items_%s (name) SELECT ''item '' || g FROM generate_series(1, %s) g',
            table_number % {schemas}, table_number, 1 + table_number % 5);
        IF table_number % 500 = 499 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$
"""


def create_bench(pgbench: Path, production: TemporaryCluster, scale: int) -> None:
    """Creates database `bench` (pgbench at `scale` plus documents, attachments and events), vacuumed and
    analysed as a production database's statistics would be. Raises BenchError, psycopg.Error."""
    with production.connect() as connection:
        connection.execute("CREATE DATABASE bench")
    run_pipeline(
        [[pgbench, "-i", "-q", "-s", str(scale), "bench"]],
        environment=client_environment(production),
        output=subprocess.DEVNULL,
        what="pgbench -i",
    )
    with production.connect("bench") as connection:
        for template, rows_per_scale in (
            (_DOCUMENTS, DOCUMENT_ROWS_PER_SCALE),
            (_ATTACHMENTS, ATTACHMENT_ROWS_PER_SCALE),
            (_EVENTS, EVENT_ROWS_PER_SCALE),
        ):
            statement = sql.SQL(template).format(rows=sql.Literal(rows_per_scale * scale),
                                                 vocabulary=sql.Literal(_VOCABULARY))  # fmt: skip
            connection.execute(statement)
        connection.execute("VACUUM ANALYZE")


def create_many(production: TemporaryCluster, tables: int) -> None:
    """Creates database `many`: `tables` small tables in 100 schemas, each with a serial primary key (a
    sequence and an index beside it, as real tables have). Raises BenchError, psycopg.Error."""
    if tables < 1:
        raise BenchError("--many-tables must be at least 1")
    with production.connect() as connection:
        connection.execute("CREATE DATABASE many")
    with production.connect("many") as connection:
        connection.execute(
            sql.SQL(_MANY_TABLES).format(schemas=sql.Literal(min(SCHEMAS, tables)), tables=sql.Literal(tables))
        )
        connection.execute("ANALYZE")


def table_bytes(production: TemporaryCluster, dbname: str, limit: int = 6) -> dict[str, int]:
    """Returns the total size (heap, TOAST, indexes) of the `limit` biggest tables of `dbname`, biggest
    first. Raises psycopg.Error."""
    with production.connect(dbname) as connection:
        rows = connection.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) "
            "ORDER BY 2 DESC LIMIT %s",
            (limit,),
        ).fetchall()
    return {str(name): int(size) for name, size in rows}  # type: ignore[call-overload]


def database_bytes(production: TemporaryCluster, dbname: str) -> int:
    """Returns pg_database_size of `dbname`. Raises psycopg.Error."""
    with production.connect() as connection:
        row = connection.execute("SELECT pg_database_size(%s)", (dbname,)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
