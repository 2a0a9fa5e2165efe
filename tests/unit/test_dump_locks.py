"""When the watch over pg_dump's start may end: pg_dump is past the phase where it takes its locks."""

from __future__ import annotations

from verifier.postgres.dump_locks import _past_lock_phase


def test_still_locking_while_a_lock_statement_runs_or_waits() -> None:
    assert not _past_lock_phase("LOCK TABLE public.a, public.b IN ACCESS SHARE MODE", True, False, 1, 3)
    assert not _past_lock_phase("LOCK TABLE public.a IN ACCESS SHARE MODE", False, False, 1, 3)


def test_not_yet_locking_while_it_reads_the_catalog() -> None:
    assert not _past_lock_phase("SELECT c.tableoid, c.oid, c.relname FROM pg_class c", False, False, 0, 3)


def test_past_once_every_table_is_held_or_it_went_on() -> None:
    assert _past_lock_phase("LOCK TABLE public.a IN ACCESS SHARE MODE", False, False, 3, 3)
    assert _past_lock_phase("SELECT tableoid, oid, conname FROM pg_constraint", False, False, 2, 3)
    assert _past_lock_phase("COPY public.a (id) TO stdout;", False, False, 0, 3)
    assert _past_lock_phase("SELECT 1", False, True, 0, 3)  # writing the archive: it locked what it dumps
