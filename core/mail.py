"""Email: a plain message and the SMTP mailer built from SMTP_URL (smtplib).

Domain services never talk to SMTP (or Redis) themselves: they call core.jobs.send_mail_later(session,
message), which parks the message on the session; when that session's transaction commits, one RQ job per
message is enqueued, and a `ninety jobs work` worker sends it through `SmtpMailer`. A rolled-back
transaction sends nothing, so no one is told of a change that did not happen.

SMTP_URL: `smtp://[user:password@]host[:port][?starttls=1&from=Ninety%20<no-reply@example.org>]`, or
`smtps://…` for implicit TLS.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from core.errors import NinetyError

DEFAULT_SENDER = "Ninety <no-reply@ninety.local>"


class MailError(NinetyError):
    code = "mail_error"
    status = 502
    title = "The email could not be sent"


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str

    def as_dict(self) -> dict:
        return asdict(self)


class Mailer(Protocol):
    def send(self, message: Message) -> None: ...

    def send_many(self, messages: list[Message]) -> list[MailError | None]: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = DEFAULT_SENDER
    timeout_s: float = 20.0


def parse_smtp_url(url: str) -> SmtpSettings:
    parts = urlsplit(url or "")
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailError(f"SMTP_URL must look like smtp://host:port, not {url[:60]!r}.", code="invalid_smtp_url")
    query = parse_qs(parts.query)
    implicit = parts.scheme == "smtps"
    return SmtpSettings(
        host=parts.hostname, port=parts.port or (465 if implicit else 25), implicit_tls=implicit,
        starttls=query.get("starttls", ["0"])[0].lower() in {"1", "true", "yes", "on"},
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sender=query.get("from", [DEFAULT_SENDER])[0])


class SmtpMailer:
    """The one real Mailer, with smtplib: one SMTP conversation per message (`send`), or one for many
    (`send_many`)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @classmethod
    def from_url(cls, url: str) -> SmtpMailer:
        return cls(parse_smtp_url(url))

    def build(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.settings.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Message-ID"] = make_msgid(domain="ninety.local")
        email.set_content(message.body)
        return email

    def send(self, message: Message) -> None:
        failed = self.send_many([message])[0]
        if failed is not None:
            raise failed

    def send_many(self, messages: list[Message]) -> list[MailError | None]:
        """Send the messages in one SMTP conversation; per message None (sent) or the MailError that refused
        it. A refused recipient fails its own message only; a conversation that breaks fails the rest."""
        s = self.settings
        results: list[MailError | None] = []
        try:
            if s.implicit_tls:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                for message in messages:
                    try:
                        smtp.send_message(self.build(message))
                        results.append(None)
                    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                        results.append(MailError(f"Sending to {message.to} failed: {exc}", code="smtp_failed"))
                        smtp.rset()
        except (OSError, smtplib.SMTPException) as exc:
            for message in messages[len(results):]:
                error = MailError(f"Sending to {message.to} failed: {exc}", code="smtp_failed")
                error.__cause__ = exc
                results.append(error)
        return results


def mask_email(email: str) -> str:
    """s…@example.com: enough for the person to recognise their address, not enough to harvest it."""
    local, _, domain = (email or "").partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"
