"""`ninety mailbox`: a local SMTP server (aiosmtpd) for the demo and development.

It accepts every message on SMTP_URL's host and port and keeps each one as an `.eml` file under
`var/mail/`, printing who it is for and its subject, so a demo user can follow the links Ninety sends
(payout-method confirmations, collaborator invitations) without a real mail server. `ninety demo --serve`
runs it under the supervisor when SMTP_URL points at this machine and nothing is listening there yet.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from flask.cli import with_appcontext

from app import context
from core.mail import parse_smtp_url

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class MaildirHandler:
    """aiosmtpd handler: one file per message, named by arrival time, never overwritten."""

    def __init__(self, folder: Path, echo=click.echo):
        self.folder = folder
        self.echo = echo
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.folder / f"{stamp}.eml"
        path.write_bytes(envelope.content)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.echo(f"mail for {', '.join(envelope.rcpt_tos)}: {message.get('Subject', '')!s} -> {path}")
        return "250 Message accepted for delivery"


def is_local(smtp_url: str) -> bool:
    return parse_smtp_url(smtp_url).host in LOCAL_HOSTS


def is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@click.command("mailbox", help="Run a local SMTP server on SMTP_URL's host and port that keeps every message "
                               "under var/mail/ (for the demo and development; never for production).")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where messages are written (default: var/mail).")
@with_appcontext
def mailbox_cmd(folder):
    from aiosmtpd.controller import Controller

    cfg = context.config()
    settings = parse_smtp_url(cfg.smtp_url)
    if settings.host not in LOCAL_HOSTS:
        raise click.UsageError(f"SMTP_URL points at {settings.host}, not this machine; the mailbox only "
                               "listens locally.")
    if cfg.env == "production":
        raise click.UsageError("the mailbox is for the demo and development, not production.")
    target = folder or Path(cfg.var_dir) / "mail"
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO
    controller = Controller(MaildirHandler(target), hostname=settings.host, port=settings.port)
    controller.start()
    click.echo(f"mailbox listening on {settings.host}:{settings.port}, writing to {target}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


def register(group: click.Group) -> None:
    group.add_command(mailbox_cmd)
