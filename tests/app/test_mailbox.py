"""The demo's local mailbox: a real SMTP server that keeps what Ninety sends under var/mail/."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import time

from aiosmtpd.controller import Controller

from app.cli.core import child_commands
from app.cli.mailbox import MaildirHandler, is_listening, is_local
from core.mail import Message, SmtpMailer
from tests.conftest import free_port


def test_the_mailbox_keeps_each_message_as_a_file(tmp_path):
    port = free_port()
    lines: list[str] = []
    controller = Controller(MaildirHandler(tmp_path / "mail", echo=lines.append), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}")
        mailer.send(Message(to="mina@artists.ninety.test", subject="Confirm your payout method",
                            body="Follow https://ninety.example/confirm/abc to confirm."))
        mailer.send(Message(to="approver@ninety.test", subject="Second", body="two"))
    finally:
        controller.stop()
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    first = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert first["To"] == "mina@artists.ninety.test"
    assert "https://ninety.example/confirm/abc" in first.get_content()
    assert "mina@artists.ninety.test" in lines[0] and "Confirm your payout method" in lines[0]


def test_the_mailbox_command_listens_on_smtp_url_and_refuses_a_remote_host(tmp_path, config):
    port = free_port()
    env = {"SMTP_URL": f"smtp://127.0.0.1:{port}", "NINETY_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "DATABASE_URL": config.database_url, "REDIS_URL": config.redis_url}
    refused = subprocess.run([sys.executable, "-m", "app.cli", "mailbox"], capture_output=True, text=True,
                             env={**env, "SMTP_URL": "smtp://mail.example.org:25"}, timeout=60)
    assert refused.returncode == 2 and "not this machine" in refused.stderr
    assert is_local(env["SMTP_URL"]) and not is_local("smtp://mail.example.org:25")
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "mailbox"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not is_listening("127.0.0.1", port):
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
            time.sleep(0.1)
        SmtpMailer.from_url(env["SMTP_URL"]).send(Message(to="listener@ninety.test", subject="Hi", body="x"))
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_demo_supervises_the_mailbox_only_when_asked(tmp_path, app):
    with app.test_request_context():
        import click

        from app.cli import main

        with click.Context(main):
            plain = child_commands(host="127.0.0.1", port=8000, workers=1, threads=4, with_worker=False,
                                   var_dir=tmp_path)
            demo = child_commands(host="127.0.0.1", port=8000, workers=1, threads=4, with_worker=False,
                                  var_dir=tmp_path, mailbox=True)
    assert "mailbox" not in [spec.name for spec in plain]
    assert [spec.name for spec in demo][:2] == ["mailbox", "web"]
