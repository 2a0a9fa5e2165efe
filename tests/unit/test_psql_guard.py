"""How the agent reads plain SQL before psql does: meta-commands anywhere psql would run them, never
inside quotes, comments or COPY data; pg_dump's own \\restrict frame; server-wide statements."""

from __future__ import annotations

import io

import pytest

from verifier.postgres.restore.psql_guard import PlainScan, _refusal, scan_plain, supports_restrict


def scan(text: str) -> PlainScan:
    return scan_plain(io.BytesIO(text.encode()))


def first_meta(text: str) -> tuple[int, str] | None:
    found = scan(text).foreign_meta_command()
    return (found.line, found.what) if found else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1;\n\\! touch /tmp/x\n", (2, "\\!")),
        ("SELECT 1 \\! touch /tmp/x\n;\n", (1, "\\!")),  # psql runs it in the middle of a line too
        ("CREATE TABLE t ();\n\\o |touch /tmp/x\nSELECT 1;\n", (2, "\\o")),
        ("\\copy (select 1) to program 'touch /tmp/x'\n", (1, "\\copy")),
        ("SET a = 1;\n\\setenv PGPASSWORD x\n", (2, "\\setenv")),
        ("\\connect postgres\n", (1, "\\connect")),
        # an object name with a newline, as pg_dump < 15.14 printed it in a comment (CVE-2025-8714)
        ("-- Name: x\n\\! id; Type: TABLE\nCREATE TABLE x ();\n", (2, "\\!")),
        ("COPY t (a) FROM stdin;\n1\n\\.\n\\! id\n", (4, "\\!")),  # after the data ends
        ("COPY t FROM stdin;\n1\n\\.\r\n\\! id\n", (4, "\\!")),  # psql also ends COPY data at \.\r\n
        ("COPY (SELECT 1 FROM stdin) TO stdout;\n\\! id\n", (2, "\\!")),  # not a COPY FROM stdin
        ("/* 'x */ \\! id\n", (1, "\\!")),
        ("SELECT $a$ x $a$ \\! id\n", (1, "\\!")),
        ("SELECT E'x\\'' \\! id\n", (1, "\\!")),  # E-string: \' does not end it, the next ' does
        ("COPY t FROM stdin; \\! id\n1\n\\.\n", (1, "text after COPY … FROM stdin;")),
    ],
)
def test_meta_commands_are_found_where_psql_would_run_them(text: str, expected: tuple[int, str]) -> None:
    assert first_meta(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 'a \\! b';\n",
        "SELECT 'it''s \\! here';\n",
        'SELECT "we\\!ird";\n',
        "-- \\! in a comment\nSELECT 1;\n",
        "/* outer /* inner */ \\! still comment */ SELECT 1;\n",
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '\\! x' $$;\n",
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT $$\\!$$ $body$;\n",
        "SELECT E'\\\\';\n",
        "COPY public.t (a, b) FROM stdin;\n\\N\t\\!\n\\\\.\nx\\.\n\\.\nSELECT 1;\n",  # backslashes in data
        'COPY t FROM STDIN WITH (FORMAT csv);\n"\\!"\n\\.\n',
    ],
)
def test_backslashes_in_quotes_comments_and_copy_data_are_not_meta_commands(text: str) -> None:
    assert first_meta(text) is None


def test_pg_dumps_own_restrict_frame_is_allowed_and_nothing_else() -> None:
    framed = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc123\n\nSET x = 1;\n\n\\unrestrict abc123\n\n"
    assert scan(framed).restricts_itself()
    assert _refusal(scan(framed), server=False, restricting=True) is None
    inside = framed.replace("SET x = 1;", "SET x = 1;\n\\! id")
    assert first_meta(inside) == (8, "\\!")
    wrong_key = framed.replace("\\unrestrict abc123", "\\unrestrict other")
    assert first_meta(wrong_key) == (5, "\\restrict abc123")
    before = "SELECT 1;\n" + framed
    refusal = _refusal(scan(before), server=False, restricting=True)
    assert refusal is not None and "outside its \\restrict frame (line 1)" in refusal
    after = framed + "SELECT 2;\n"
    refusal = _refusal(scan(after), server=False, restricting=True)
    assert refusal is not None and "(line 11)" in refusal


def test_server_wide_statements_are_refused_only_for_the_server_sandbox() -> None:
    text = "SET a = 1;\nDROP DATABASE\n  prod;\nCREATE ROLE x;\nSELECT 'CREATE ROLE y';\n"
    found = scan(text)
    assert [(f.line, f.what) for f in found.server_statements] == [(2, "DROP DATABASE"), (4, "CREATE ROLE")]
    assert _refusal(found, server=False, restricting=True) is None
    refusal = _refusal(found, server=True, restricting=True)
    assert refusal is not None and refusal.startswith("the dump contains DROP DATABASE (line 2)")


def test_a_quote_whose_end_depends_on_standard_conforming_strings_is_refused_without_restrict() -> None:
    text = "SET standard_conforming_strings = off;\nSELECT 'x\\'' \\! id';\n"
    found = scan(text)
    assert found.foreign_meta_command() is None  # our (standard) reading sees a string...
    assert _refusal(found, server=False, restricting=True) is None  # ...psql's \restrict is the guard
    refusal = _refusal(found, server=False, restricting=False)
    assert refusal is not None and "standard_conforming_strings (line 2)" in refusal


def test_line_numbers_survive_block_boundaries() -> None:
    copy_rows = "".join(f"{n}\tsome text\n" for n in range(200_000))
    text = f"COPY t FROM stdin;\n{copy_rows}\\.\nSELECT 1;\n\\! id\n"
    assert len(text) > 2 * 1024 * 1024
    assert first_meta(text) == (200_004, "\\!")  # COPY, 200000 rows, the terminator, SELECT


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", True),
        ("psql (PostgreSQL) 15.13", False),
        ("psql (PostgreSQL) 16.10", True),
        ("psql (PostgreSQL) 17.5", False),
        ("psql (PostgreSQL) 18.0", True),
        ("psql (PostgreSQL) 12.22", False),
    ],
)
def test_restrict_is_known_from_the_version(version: str, expected: bool) -> None:
    assert supports_restrict(version) is expected
