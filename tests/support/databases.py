"""Databases for the tests of a night of several databases: a small healthy schema, and one whose backup
is taken but whose proof is CRITICAL."""

from __future__ import annotations

from psycopg import sql

from verifier.postgres.throwaway.cluster import TemporaryCluster

SMALL_SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, total numeric);
INSERT INTO orders (customer, total) SELECT 1 + g % 200, g * 1.5 FROM generate_series(1, 1000) g;
"""

# `label_of` reads `lookup` without a schema: pg_restore runs with an empty search_path, so the CHECK on
# `items` fails its COPY: the backup is taken, but its proof is CRITICAL
BROKEN_SCHEMA = """
CREATE TABLE lookup (id int PRIMARY KEY, label text);
INSERT INTO lookup VALUES (1, 'one'), (2, 'two');
CREATE FUNCTION label_of(i int) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT label FROM lookup WHERE id = i';
CREATE TABLE items (id int PRIMARY KEY, kind int CHECK (label_of(kind) IS NOT NULL));
INSERT INTO items SELECT g, 1 + g % 2 FROM generate_series(1, 10) g;
"""


def create_database(cluster: TemporaryCluster, name: str, schema: str) -> None:
    with cluster.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with cluster.connect(name) as connection:
        connection.execute(schema)  # type: ignore[arg-type]
