"""Unambiguous names (issue 20, point 9): `app."orders.archive"` and `"app.orders".archive` are two
tables, in the console, the text and HTML reports, the JSON and Zabbix; plain names stay plain (their
existing Zabbix keys do not change). Pure: no server (the keyword list is compared with a real
server's quote_ident in tests/integration/test_real_schemas.py)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from pg_backup_verifier_checks.objects import materialized_views
from rich.console import Console

from tests.support.check_context import NOW, config
from verifier.check_registry import CheckContext
from verifier.names import quote_ident
from verifier.render.console import render
from verifier.render.html import render_html
from verifier.render.page import ReportPage
from verifier.render.text import render_text
from verifier.report import Report, Status, TableComparison, Verification
from verifier.zabbix import keys
from verifier.zabbix.values import values_from_report

DOTTED_TABLE = TableComparison("app", "orders.archive", 5, 4, 5, Status.CRITICAL, "1 row missing")
DOTTED_SCHEMA = TableComparison("app.orders", "archive", 7, 6, 7, Status.CRITICAL, "1 row missing")
PLAIN = TableComparison("public", "orders", 9, 9, 9, Status.OK)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("orders", "orders"),
        ("_order_2", "_order_2"),
        ("orders.archive", '"orders.archive"'),
        ("Orders", '"Orders"'),
        ('say "hi"', '"say ""hi"""'),
        ("2fa", '"2fa"'),
        ("order", '"order"'),  # a reserved keyword
        ("name", "name"),  # an unreserved one
        ("café", '"café"'),
        ("", '""'),
    ],
)
def test_quote_ident_quotes_as_postgresql_does(name: str, shown: str) -> None:
    assert quote_ident(name) == shown


def _report() -> Report:
    tables = [DOTTED_TABLE, DOTTED_SCHEMA, PLAIN]
    verification = Verification("shop_2026", exact=True, restored=True, sandbox="local", tables=tables)
    return Report("r1", "run", "db:5432/shop", datetime(2026, 11, 26, tzinfo=UTC), verification=verification)


def test_two_tables_that_printed_alike_print_apart_everywhere() -> None:
    report = _report()
    assert (DOTTED_TABLE.qualified_name, DOTTED_SCHEMA.qualified_name) == (
        'app."orders.archive"',
        '"app.orders".archive',
    )
    output = io.StringIO()
    render(report, Console(file=output, width=120, no_color=True, force_terminal=False), all_tables=True)
    page = ReportPage(report)
    html = render_html(page)
    for shown in (output.getvalue(), render_text(page)):
        assert 'app."orders.archive"' in shown and '"app.orders".archive' in shown, shown
    assert "app.&#34;orders.archive&#34;" in html and "&#34;app.orders&#34;.archive" in html
    assert "app.orders.archive" not in output.getvalue() + render_text(page)
    stored = json.loads(json.dumps(report.to_dict()))["verification"]["tables"]
    assert {(table["schema"], table["table"]) for table in stored} >= {
        ("app", "orders.archive"),
        ("app.orders", "archive"),
    }


def test_zabbix_discovery_and_keys_keep_them_apart_and_plain_keys_unchanged() -> None:
    values = values_from_report(_report(), [], NOW, database="shop")
    rows = json.loads(next(value.value for value in values.discovery if value.key == keys.TABLE_DISCOVERY))
    assert {"{#DB}": "shop", "{#SCHEMA}": "app", "{#TABLE}": '"orders.archive"'} in rows
    assert {"{#DB}": "shop", "{#SCHEMA}": '"app.orders"', "{#TABLE}": "archive"} in rows
    sent = [value.key for value in values.prototypes if value.key.startswith(keys.TABLE_ROWS + "[")]
    assert len(sent) == len(set(sent)) == 3
    assert 'pgbackup.table.rows["shop","public.orders"]' in sent  # what it always was
    # what Zabbix makes of the prototype with these macros (it escapes the quotes it substitutes)
    prototype = keys.item_key(keys.TABLE_ROWS, *keys.TABLE_PROTOTYPE_PARAMETERS)
    for row in rows:
        made = prototype
        for macro, value in row.items():
            made = made.replace(macro, value.replace('"', '\\"'))
        assert made in sent


def test_a_view_note_is_in_the_summary_not_promised_below() -> None:
    """The console shows no details of an OK check: "(1 named below)" named nothing."""
    verification = Verification("b", exact=True, restored=True, sandbox="local")
    verification.findings_of("materialized_views").compared = 2
    verification.findings_of("materialized_views").notes = [
        "materialized view public.v was not populated in production"
    ]
    result = materialized_views(CheckContext(config(), NOW, "run", [], False, False, None, None, verification))
    assert result is not None and result.status is Status.OK
    assert "below" not in result.summary
    assert result.summary.endswith("; materialized view public.v was not populated in production")
