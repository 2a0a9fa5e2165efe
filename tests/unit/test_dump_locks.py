"""When the watch over pg_dump's start may end: pg_dump has read the schema (and taken its locks)."""

from __future__ import annotations

from verifier.postgres.dump_locks import _past_schema_phase


def test_still_reading_the_schema_while_it_locks_or_reads_the_catalog() -> None:
    assert not _past_schema_phase("LOCK TABLE public.a, public.b IN ACCESS SHARE MODE", False, 1)
    assert not _past_schema_phase("SELECT c.tableoid, c.oid, c.relname FROM pg_class c", False, 1)
    assert not _past_schema_phase("SELECT pg_catalog.pg_get_viewdef('16390'::pg_catalog.oid)", False, 1)


def test_past_once_it_writes_copies_or_started_its_workers() -> None:
    assert _past_schema_phase("COPY public.a (id) TO stdout;", False, 1)
    assert _past_schema_phase("SELECT 1", True, 1)  # writing the archive: the schema is read
    assert _past_schema_phase("SELECT 1", False, 3)  # a directory dump's workers connect after the schema
