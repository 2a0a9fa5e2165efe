"""E-mail of the nightly report: HTML with a plain-text alternative, over SMTP with STARTTLS or SSL.

Sending is best effort by design: the report is already written to `reports/` before this runs, so
a mail server that is down costs a WARNING (`email` check), never the report.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from verifier.config import EmailConfig
from verifier.report import CheckResult, Report, Status

logger = logging.getLogger(__name__)

CHECK_NAME = "email"


def should_send(status: Status, config: EmailConfig) -> bool:
    """Returns True unless `only_on_problem` is set and `status` is OK."""
    return not (config.only_on_problem and status is Status.OK)


def build_message(status: Status, about: str, config: EmailConfig, *, html: str, text: str) -> EmailMessage:
    """Returns the e-mail of a report `about` a source (or a night's databases): subject with the
    verdict, text part first, HTML as the preferred alternative."""
    message = EmailMessage()
    message["Subject"] = f"[{status.name}] backup report {about}"
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="pg-backup-verifier")
    message["X-PG-Backup-Verifier-Status"] = status.name
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_report(report: Report, config: EmailConfig, *, html: str, text: str) -> CheckResult:
    """Sends one run's report as configured and returns the `email` check (see `send`)."""
    return send(report.status, report.source, config, html=html, text=text)


def send(status: Status, about: str, config: EmailConfig, *, html: str, text: str) -> CheckResult:
    """Sends a report of `status` about `about` as configured and returns the `email` check.

    OK when sent or deliberately skipped (only_on_problem and all OK); WARNING when sending failed,
    with the reason. Never raises for a mail problem.
    """
    if not should_send(status, config):
        return CheckResult(CHECK_NAME, Status.OK, "not sent: everything is OK and only_on_problem is set")
    recipients = ", ".join(config.to)
    try:
        deliver(build_message(status, about, config, html=html, text=text), config)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as error:
        reason = _reason(error)
        logger.warning("could not e-mail the report to %s: %s", recipients, reason)
        return CheckResult(
            CHECK_NAME,
            Status.WARNING,
            f"could not e-mail the report to {recipients}: {reason}",
            details=(f"server {config.smtp_host}:{config.smtp_port} ({config.security})",),
        )
    logger.info("report e-mailed to %s", recipients)
    return CheckResult(CHECK_NAME, Status.OK, f"report e-mailed to {recipients}")


def deliver(message: EmailMessage, config: EmailConfig) -> None:
    """Sends `message` through the configured server.

    Raises OSError (connection), ssl.SSLError (certificate) or smtplib.SMTPException (refused, auth).
    """
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    client: smtplib.SMTP
    if config.security == "ssl":
        client = smtplib.SMTP_SSL(config.smtp_host, config.smtp_port, timeout=config.timeout, context=context)
    else:
        client = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout)
    with client:
        client.ehlo()
        if config.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if config.user:
            password = config.password.get_secret_value() if config.password else ""
            client.login(config.user, password)
        client.send_message(message)


def _reason(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        detail = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        return f"server answered {error.smtp_code} {detail}".strip()
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + ", ".join(error.recipients)
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({error.verify_message}); set report.email.ca_file?"
    text = str(error) or type(error).__name__
    return text.splitlines()[0]
