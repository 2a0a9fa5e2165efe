"""When the watch over pg_dump's start may end: pg_dump has read the schema (and taken its locks)."""

from __future__ import annotations

import time

from verifier.postgres.backup.dump_locks import _past_schema_phase


def test_still_reading_the_schema_while_it_locks_or_reads_the_catalog() -> None:
    assert not _past_schema_phase("LOCK TABLE public.a, public.b IN ACCESS SHARE MODE", False, 1)
    assert not _past_schema_phase("SELECT c.tableoid, c.oid, c.relname FROM pg_class c", False, 1)
    assert not _past_schema_phase("SELECT pg_catalog.pg_get_viewdef('16390'::pg_catalog.oid)", False, 1)


def test_past_once_it_writes_copies_or_started_its_workers() -> None:
    assert _past_schema_phase("COPY public.a (id) TO stdout;", False, 1)
    assert _past_schema_phase("SELECT 1", True, 1)  # writing the archive: the schema is read
    assert _past_schema_phase("SELECT 1", False, 3)  # a directory dump's workers connect after the schema


def test_output_on_the_pipe_ends_the_watch_for_the_schema_phase() -> None:
    """pg_dump writes nothing before it has read the whole schema; with a large schema it then blocks on
    its stdout pipe, its session idle, and the watch waited out lock_wait_timeout + 30 s (a 6,000-table
    run sat there for minutes). A byte on the pipe now ends the watch. Real pipes, from `sh`."""
    import subprocess
    import tempfile

    from verifier.process import LocalProgram

    def started(argv: list[str], stdout: int) -> LocalProgram:
        return LocalProgram(subprocess.Popen(argv, stdout=stdout), tempfile.TemporaryFile())

    silent = started(["sleep", "5"], subprocess.PIPE)
    talking = started(["sh", "-c", "printf x; sleep 5"], subprocess.PIPE)
    quiet = started(["sleep", "5"], subprocess.DEVNULL)
    try:
        assert silent.output_started() is False
        deadline = time.monotonic() + 5
        while not talking.output_started() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert talking.output_started()
        assert next(talking.stdout_chunks()) == b"x"  # nothing was taken from the pipe
        assert quiet.output_started() is False  # no pipe: the session-based watch alone decides
    finally:
        for program in (silent, talking, quiet):
            program.kill()
