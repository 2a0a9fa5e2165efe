"""E-mail of the report against a real local SMTP server (aiosmtpd) with STARTTLS, SSL and AUTH.

The server and its self-signed certificate are made by the test; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import email
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.sample_report import sample_page
from verifier import mailer
from verifier.config import EmailConfig, parse_config
from verifier.render.html import render_html
from verifier.render.text import render_text
from verifier.report import Status

PASSWORD = "s3cret-from-a-file"
# the SSL test server is TLS from the first byte, which aiosmtpd's warning does not know
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@dataclass
class Mailbox:
    """What the SMTP server received, and who logged in."""

    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password.decode() == PASSWORD:
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server(certificate: tuple[Path, Path], request: pytest.FixtureRequest) -> Iterator[tuple[Mailbox, int]]:
    """An aiosmtpd server on 127.0.0.1; `request.param` is "starttls" or "ssl"."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    port = free_port()
    options: dict[str, Any] = {"authenticator": mailbox.authenticate, "auth_required": True}
    if request.param == "ssl":
        # the whole connection is TLS, but aiosmtpd only counts STARTTLS as TLS when offering AUTH
        options.update(ssl_context=context, auth_require_tls=False)
    else:
        options.update(tls_context=context, require_starttls=True)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def email_config(tmp_path: Path, port: int, *, security: str, ca_file: Path | None, extra: str = "") -> EmailConfig:
    """The e-mail section as a user writes it, with the password read from a secret file."""
    secret = tmp_path / "smtp_password"
    secret.write_text(PASSWORD + "\n")
    config = parse_config(
        "source: {dbname: eatfit24}\n"
        "report:\n"
        "  email:\n"
        "    to: [dba@example.org, cto@example.org]\n"
        "    from: backups@example.org\n"
        "    smtp_host: 127.0.0.1\n"
        f"    smtp_port: {port}\n"
        f"    security: {security}\n"
        "    user: backups\n"
        f"    password: file:{secret}\n"
        "    timeout: 10\n" + (f"    ca_file: {ca_file}\n" if ca_file else "") + extra
    )
    assert config.report.email is not None
    return config.report.email


def send(config: EmailConfig, *, problem: bool = True) -> tuple[Status, str]:
    page = sample_page(problem=problem)
    result = mailer.send_report(page.report, config, html=render_html(page), text=render_text(page))
    return result.status, result.summary


@pytest.mark.parametrize("smtp_server", ["starttls", "ssl"], indirect=True)
def test_report_is_delivered_as_html_with_a_text_alternative(
    smtp_server: tuple[Mailbox, int], certificate: tuple[Path, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mailbox, port = smtp_server
    security = request.node.callspec.params["smtp_server"]
    config = email_config(tmp_path, port, security=security, ca_file=certificate[0])

    status, summary = send(config)

    assert (status, summary) == (Status.OK, "report e-mailed to dba@example.org, cto@example.org")
    assert mailbox.logins == ["backups"]
    assert mailbox.envelopes == [("backups@example.org", ["dba@example.org", "cto@example.org"])]
    message = mailbox.messages[0]
    assert message["Subject"] == "[WARNING] backup report 127.0.0.1:5432/eatfit24"
    assert message.get_content_type() == "multipart/alternative"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert "WARNING: The backup eatfit24_2026-11-26_00-32-00Z restores" in parts["text/plain"]
    assert "<svg" in parts["text/html"] and "&lt;script&gt;" in parts["text/html"]
    assert PASSWORD not in message.as_string()


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
def test_only_on_problem_skips_an_ok_night_and_sends_a_bad_one(
    smtp_server: tuple[Mailbox, int], certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    mailbox, port = smtp_server
    config = email_config(
        tmp_path, port, security="starttls", ca_file=certificate[0], extra="    only_on_problem: true\n"
    )
    assert send(config, problem=False) == (Status.OK, "not sent: everything is OK and only_on_problem is set")
    assert mailbox.messages == []
    assert send(config, problem=True)[0] is Status.OK
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
def test_untrusted_certificate_is_a_warning_not_a_crash(smtp_server: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp_server
    status, summary = send(email_config(tmp_path, port, security="starttls", ca_file=None))
    assert status is Status.WARNING
    assert "certificate not trusted" in summary and "ca_file" in summary
    assert mailbox.messages == []


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
def test_wrong_password_is_a_warning_with_the_servers_answer(
    smtp_server: tuple[Mailbox, int], certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    _, port = smtp_server
    config = email_config(tmp_path, port, security="starttls", ca_file=certificate[0])
    config = config.model_copy(update={"password": None})
    status, summary = send(config)
    assert status is Status.WARNING
    assert "535" in summary


def test_server_down_is_a_warning(tmp_path: Path) -> None:
    config = email_config(tmp_path, free_port(), security="starttls", ca_file=None)
    status, summary = send(config)
    assert status is Status.WARNING
    assert summary.startswith("could not e-mail the report to dba@example.org, cto@example.org:")
    assert "refused" in summary.lower()
