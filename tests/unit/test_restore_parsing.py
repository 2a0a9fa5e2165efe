"""Restore errors are attributed to objects; plain SQL is read as written, its objects and trailer noted."""

from __future__ import annotations

import gzip
from pathlib import Path

from verifier.postgres.restore.plain import PlainDump
from verifier.postgres.restore.run import parse_pg_restore_errors, parse_psql_errors

PG_RESTORE_STDERR = """\
pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 215; 1259 16390 TABLE orders app
pg_restore: error: could not execute query: ERROR:  type "citext" does not exist
LINE 3:     email citext
Command was: CREATE TABLE public.orders (...);
pg_restore: from TOC entry 3342; 0 16390 TABLE DATA orders app
pg_restore: error: could not execute query: ERROR:  relation "public.orders" does not exist
pg_restore: warning: errors ignored on restore: 2
"""

PLAIN = b"""\
--
-- PostgreSQL database dump
--

--
-- Name: users; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.users (id integer);

ALTER TABLE public.users OWNER TO app;

--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: app
--

COPY public.users (id) FROM stdin;
GRANT ALL ON everything TO nobody;
\\.

GRANT SELECT ON TABLE public.users TO reporting;
"""


def test_pg_restore_errors_name_the_toc_entry() -> None:
    issues = parse_pg_restore_errors(PG_RESTORE_STDERR)
    assert [issue.object for issue in issues] == ["TABLE orders", "TABLE DATA orders"]
    assert 'type "citext" does not exist' in issues[0].message


def test_plain_reader_passes_ownership_and_grants_through(tmp_path: Path) -> None:
    """Owners and grants are restored now (the sandbox has production's role names)."""
    path = tmp_path / "x.sql.gz"
    path.write_bytes(gzip.compress(PLAIN))
    with PlainDump(path) as dump:
        assert dump.problem_before_start() is None
        assert b"".join(dump.batches()) == PLAIN
        assert dump.problem_at_end() is not None  # PLAIN has no completion trailer


def test_psql_errors_are_attributed_to_the_section_holding_the_line() -> None:
    objects = [(2, "TABLE public.users"), (10, "TABLE DATA public.users")]
    stderr = 'psql:<stdin>:13: ERROR:  invalid input syntax for type integer: "x"\n'
    issues = parse_psql_errors(stderr, objects)
    assert issues[0].object == "TABLE DATA public.users (line 13)"
    assert "invalid input syntax" in issues[0].message


def reference_reader(text: bytes) -> tuple[list[tuple[int, str]], bool]:
    """The rule stated line by line: `-- Name:` headers and the trailer count outside COPY data only."""
    import re

    objects, in_copy, complete = [], False, False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if in_copy:
            in_copy = line not in (b"\\.\n", b"\\.")
        elif line.startswith(b"-- Name: ") or line.startswith(b"-- Data for Name: "):
            match = re.match(rb"^-- (?:Data for )?Name: ([^;]*); Type: ([^;]*); Schema: ([^;]*);", line)
            assert match is not None
            objects.append((number, f"{match.group(2).decode()} {match.group(3).decode()}.{match.group(1).decode()}"))
        elif line.startswith(b"COPY ") and line.rstrip(b"\n").endswith(b"FROM stdin;"):
            in_copy = True
        elif line == b"-- PostgreSQL database dump complete\n":
            complete = True
    return objects, complete


def test_block_reader_equals_the_line_rule_at_every_block_size(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from verifier.postgres.restore import plain

    rows = b"".join(b"%d\tGRANT x TO y;\t-- PostgreSQL database dump complete\n" % n for n in range(200))
    body = (
        PLAIN
        + b"COPY public.t (a, b, c) FROM stdin;\n"
        + b"-- PostgreSQL database dump complete\n"
        + rows
        + b"\\.\n"
        + b"COPY public.empty (a) FROM stdin;\n\\.\nALTER TABLE public.t OWNER TO app;\n"
        + b"-- Name: t; Type: TABLE; Schema: public; Owner: app\nSELECT 1;\n"
    )
    for text in (body, body + b"--\n-- PostgreSQL database dump complete\n--\n\n"):
        expected = reference_reader(text)
        path = tmp_path / "dump.sql"
        path.write_bytes(text)
        for batch in (1, 2, 3, 5, 64, 1000, 1 << 20):
            monkeypatch.setattr(plain, "BATCH_BYTES", batch)
            with plain.PlainDump(path) as dump:
                assert dump.problem_before_start() is None
                got = b"".join(dump.batches())
                assert (got, (dump.objects, dump.complete)) == (text, expected), f"batch size {batch}"


# Real stderr of `pg_restore --verbose --jobs=2` into a database where a view already holds the name of the
# dump's table `orders`, and where the function `label_of` (which reads `lookup` without a schema) cannot
# see `lookup` under pg_restore's empty search_path: four independent failures, four consequences of one.
PARTIAL_FAILURE = (Path(__file__).parent / "data" / "pg_restore_partial_failure_j2_verbose.txt").read_text()


def test_each_failed_object_is_one_line_with_its_toc_entry_grouped_under_its_cause() -> None:
    from verifier.postgres.restore.restore_errors import failed_object_lines, parse_pg_restore_errors

    issues = parse_pg_restore_errors(PARTIAL_FAILURE)
    assert [(issue.toc_entry, issue.object) for issue in issues] == [
        (217, "TABLE orders"),
        (3376, "COMMENT TABLE orders"),
        (218, "VIEW order_view"),
        (3367, "TABLE DATA items"),
        (3219, "INDEX tagged_label"),
        (3369, "TABLE DATA orders"),
        (3220, "INDEX orders_note"),
        (3222, "CONSTRAINT orders orders_pkey"),
    ]
    # the view's second error (its OWNER TO, which pg_restore prints without repeating the entry) stays with it
    assert issues[2].message == 'column orders.note does not exist; relation "public.order_view" does not exist'
    assert failed_object_lines(issues) == [
        'TABLE orders (TOC 217): relation "orders" already exists',
        '  ↳ COMMENT TABLE orders (TOC 3376): "orders" is not a table',
        '  ↳ TABLE DATA orders (TOC 3369): column "note" of relation "orders" does not exist',
        '  ↳ INDEX orders_note (TOC 3220): cannot create index on relation "orders" '
        "(This operation is not supported for views.)",
        "  ↳ CONSTRAINT orders orders_pkey (TOC 3222): ALTER action ADD CONSTRAINT cannot be performed on "
        'relation "orders" (This operation is not supported for views.)',
        'VIEW order_view (TOC 218): column orders.note does not exist; relation "public.order_view" does not exist',
        'TABLE DATA items (TOC 3367): COPY failed for table "items": relation "lookup" does not exist',
        'INDEX tagged_label (TOC 3219): relation "lookup" does not exist',
    ]


def test_without_entry_lines_the_statement_names_the_object_never_the_archive() -> None:
    """pg_restore without --verbose prints no entry lines: a SQL error must not read as a damaged archive."""
    from verifier.postgres.restore.restore_errors import ARCHIVE, parse_pg_restore_errors

    quiet = "\n".join(line for line in PARTIAL_FAILURE.splitlines() if "from TOC entry" not in line)
    objects = [issue.object for issue in parse_pg_restore_errors(quiet)]
    assert ARCHIVE not in objects
    assert objects[:2] == ["TABLE public.orders", "COMMENT ON TABLE public.orders"]
    assert "TABLE DATA items" in objects and "INDEX tagged_label ON public.tagged" in objects


def test_an_unreadable_archive_is_the_archive_even_inside_an_entry() -> None:
    from verifier.postgres.restore.restore_errors import ARCHIVE, parse_pg_restore_errors

    stderr = (
        "pg_restore: from TOC entry 3367; 0 16393 TABLE DATA items app\n"
        "pg_restore: error: could not read from input file: end of file\n"
    )
    assert [(issue.object, issue.message) for issue in parse_pg_restore_errors(stderr)] == [
        (ARCHIVE, "could not read from input file: end of file")
    ]
