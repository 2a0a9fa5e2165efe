"""The night's report for several databases: one HTML page in the root's `reports/` (a summary table, one row
per database linking to its section, each section drawn by the one report's own template) and ONE e-mail
per night, never one per database. Real PostgreSQL databases, a real SMTP server (aiosmtpd on 127.0.0.1),
the page opened in headless Chromium."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.integration.test_several_databases import BROKEN_SCHEMA, SMALL_SCHEMA, create_database, several
from tests.support import browser
from tests.support.html_rows import table_rows, visible_text
from verifier.pipeline.night import run_night
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.repository.databases import Databases

pytestmark = pytest.mark.integration


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A plain SMTP server on 127.0.0.1 and what it received."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def part(message: Message, subtype: str) -> str:
    found = next(piece for piece in message.walk() if piece.get_content_type() == f"text/{subtype}")
    payload = found.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_one_page_and_one_mail_for_the_whole_night(
    cluster: TemporaryCluster, tmp_path: Path, mailbox: tuple[Mailbox, int], chromium: str
) -> None:
    box, port = mailbox
    for name, schema in (("app", SMALL_SCHEMA), ("billing", SMALL_SCHEMA), ("broken <b>", BROKEN_SCHEMA)):
        create_database(cluster, name, schema)
    repository = tmp_path / "repo"
    config = several(cluster, repository, databases="all")
    email_section = {"to": ["dba@example.org"], "from": "backups@example.org", "smtp_port": port, "security": "none"}
    config = config.model_copy(
        update={"report": config.report.model_validate({"email": email_section}, by_alias=True)}
    )

    night = run_night(config)

    assert night.exit_code == 2
    page = repository / "reports" / f"{night.run_id}.html"
    html = page.read_text()
    rows = table_rows(html, "databases")
    assert len(rows) == 3, rows
    assert rows[0].startswith("app ") and rows[0].endswith(" verified, OK"), rows[0]
    assert rows[1].startswith("billing ") and rows[1].endswith(" verified, OK"), rows[1]
    assert rows[2].startswith("broken <b> ") and "NOT VERIFIED, CRITICAL" in rows[2], rows[2]
    assert "restore" in rows[2] or "row_counts" in rows[2], rows[2]  # why, under its verdict
    for anchor in ("db-app", "db-billing", "db-broken--b-"):
        assert f'href="#{anchor}"' in html and f'<section class="database" id="{anchor}">' in html
    # each section is the one report's own body: its tables under the section's prefix
    assert table_rows(html, "db-app-tables") == [
        "public.customers 200 200 200 0 OK",
        "public.orders 1,000 1,000 1,000 0 OK",
    ]
    assert any(row.startswith("restore CRITICAL") for row in table_rows(html, "db-broken--b--checks"))
    assert "<b>" not in html.replace("&lt;b&gt;", "")  # a database's name is escaped, never markup

    # the runs of the databases sent nothing: the night sent one e-mail, the whole night in it
    assert len(box.messages) == 1, [message["Subject"] for message in box.messages]
    message = box.messages[0]
    assert message["Subject"] == "[CRITICAL] backup report 3 databases"
    text = part(message, "plain")
    opening = text.splitlines()[:6]
    assert opening[0].startswith("app ") and opening[0].endswith("verified, OK"), opening
    assert all(len(line) <= 80 for line in opening if not line.startswith(" ")), opening
    assert text.count("Backup integrity report: ") == 3
    assert part(message, "html").replace("\r\n", "\n").strip() == html.strip()  # the page itself (CRLF on the wire)
    for name in ("app", "billing"):
        report = Databases(repository).repository(name).reports_dir
        assert list(report.glob("*.html")), name  # each database keeps its own page beside its report

    shot = browser.screenshot(page, tmp_path / "night.png", height=1400)
    assert shot.read_bytes().startswith(b"\x89PNG")
    dom = visible_text(browser.dump_dom(page))
    assert "Backup integrity report: 3 databases" in dom and "NOT VERIFIED, CRITICAL" in dom
