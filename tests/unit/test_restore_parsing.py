"""Restore errors are attributed to objects; plain SQL loses ownership lines but keeps line numbers."""

from __future__ import annotations

import gzip
import io

from verifier.postgres.restore import _filtered_batches, parse_pg_restore_errors, parse_psql_errors

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


def test_plain_filter_blanks_ownership_and_grants_outside_copy_data_only() -> None:
    objects: list[tuple[int, str]] = []
    filtered = b"".join(_filtered_batches(io.BytesIO(gzip.compress(PLAIN)), objects))
    assert filtered.count(b"\n") == PLAIN.count(b"\n")
    assert b"OWNER TO" not in filtered
    assert b"GRANT SELECT" not in filtered
    assert b"GRANT ALL ON everything TO nobody;" in filtered  # inside COPY data: a row, not a statement
    assert objects == [(2, "TABLE public.users"), (10, "TABLE DATA public.users")]


def test_psql_errors_are_attributed_to_the_section_holding_the_line() -> None:
    objects = [(2, "TABLE public.users"), (10, "TABLE DATA public.users")]
    stderr = 'psql:<stdin>:13: ERROR:  invalid input syntax for type integer: "x"\n'
    issues = parse_psql_errors(stderr, objects)
    assert issues[0].object == "TABLE DATA public.users (line 13)"
    assert "invalid input syntax" in issues[0].message


def reference_filter(text: bytes) -> tuple[bytes, list[tuple[int, str]]]:
    """The rule stated line by line: blank ownership/privilege statements outside COPY data."""
    import re

    out, objects, in_copy = [], [], False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if in_copy:
            in_copy = line not in (b"\\.\n", b"\\.")
        elif line.startswith(b"-- Name: ") or line.startswith(b"-- Data for Name: "):
            match = re.match(rb"^-- (?:Data for )?Name: ([^;]*); Type: ([^;]*); Schema: ([^;]*);", line)
            assert match is not None
            objects.append((number, f"{match.group(2).decode()} {match.group(3).decode()}.{match.group(1).decode()}"))
        elif line.startswith(b"COPY ") and line.rstrip(b"\n").endswith(b"FROM stdin;"):
            in_copy = True
        elif re.match(rb"^(ALTER .* OWNER TO .*;|GRANT .*;|REVOKE .*;)\n?$", line):
            line = b"\n"
        out.append(line)
    return b"".join(out), objects


def test_block_filter_equals_the_line_rule_at_every_block_size(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from verifier.postgres import restore

    rows = b"".join(b"%d\tGRANT x TO y;\tALTER t OWNER TO z;\n" % n for n in range(200))
    text = (
        PLAIN
        + b"COPY public.t (a, b, c) FROM stdin;\n"
        + rows
        + b"\\.\n"
        + b"COPY public.empty (a) FROM stdin;\n\\.\nALTER TABLE public.t OWNER TO app;\n"
        + b"-- Name: t; Type: TABLE; Schema: public; Owner: app\nSELECT 1;"
    )
    expected = reference_filter(text)
    for batch in (1, 2, 3, 5, 64, 1000, 1 << 20):
        monkeypatch.setattr(restore, "BATCH_BYTES", batch)
        objects: list[tuple[int, str]] = []
        got = b"".join(_filtered_batches(io.BytesIO(text), objects))
        assert (got, objects) == expected, f"batch size {batch}"
