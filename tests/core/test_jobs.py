"""Email through RQ: deferred until commit, sent by `ninety jobs work --burst` to a real SMTP server."""

from __future__ import annotations

from sqlalchemy import text

from core import jobs
from core.mail import Message, SmtpMailer, parse_smtp_url
from tests.conftest import CliRunner


def _queued(app) -> int:
    return jobs.make_queue(jobs.connect(app.extensions["ninety"].config.redis_url)).count


def test_an_email_is_enqueued_on_commit_and_the_worker_sends_it(make_app, smtp):
    app = make_app(smtp_url=smtp.url)
    session = app.extensions["ninety"].sessions()
    session.execute(text("SELECT 1"))
    jobs.send_mail_later(session, Message(to="ana@example.com", subject="Hello", body="Link: http://x/y"))
    assert _queued(app) == 0  # not before the commit
    session.commit()
    session.close()
    assert _queued(app) == 1
    result = CliRunner(app).invoke(["jobs", "work", "--burst"])
    assert result.exit_code == 0, result.output
    assert "0 failed jobs" in result.output
    [mail] = smtp.to("ana@example.com")
    assert mail["subject"] == "Hello" and "http://x/y" in mail["body"]
    assert _queued(app) == 0


def test_a_rollback_sends_nothing_and_a_rolled_back_savepoint_drops_only_its_own(make_app, smtp):
    app = make_app(smtp_url=smtp.url)
    session = app.extensions["ninety"].sessions()
    jobs.send_mail_later(session, Message(to="gone@example.com", subject="No", body="x"))
    session.rollback()
    jobs.send_mail_later(session, Message(to="kept@example.com", subject="Yes", body="x"))
    try:
        with session.begin_nested():
            jobs.send_mail_later(session, Message(to="inner@example.com", subject="No", body="x"))
            raise ValueError
    except ValueError:
        pass
    with session.begin_nested():
        jobs.send_mail_later(session, Message(to="inner-kept@example.com", subject="Yes", body="x"))
    assert _queued(app) == 0  # a released savepoint is not the commit
    session.commit()
    session.close()
    assert CliRunner(app).invoke(["jobs", "work", "--burst"]).exit_code == 0
    assert sorted(r for m in smtp.messages for r in m["to"]) == ["inner-kept@example.com", "kept@example.com"]


def test_smtp_url_parsing():
    s = parse_smtp_url("smtps://u%40x:p%3Aw@mail.example.org?from=Ninety%20%3Cn%40example.org%3E")
    assert (s.host, s.port, s.implicit_tls, s.username, s.password) == ("mail.example.org", 465, True, "u@x", "p:w")
    assert s.sender == "Ninety <n@example.org>"
    assert parse_smtp_url("smtp://127.0.0.1:8025").port == 8025
    mail = SmtpMailer.from_url("smtp://h:1?starttls=1").build(Message(to="a@b.c", subject="S", body="B"))
    assert mail["To"] == "a@b.c" and mail["From"] == "Ninety <no-reply@ninety.local>"


class _Refusing:
    """An SMTP sink that refuses one recipient (550), as a real server refuses an unknown mailbox."""

    def __init__(self, sink, refused: str):
        self.sink, self.refused = sink, refused
        self.conversations = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.conversations += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return await self.sink.handle_DATA(server, session, envelope)


def test_a_batch_of_receipts_is_one_conversation_and_a_refused_one_is_retried_on_its_own(make_app, smtp):
    from sales.tasks import send_receipts

    smtp._controller.handler = _Refusing(smtp, "gone@example.com")
    app = make_app(smtp_url=smtp.url)
    session = app.extensions["ninety"].sessions()
    session.execute(text("SELECT 1"))
    send_receipts(session, [Message(to=f"{name}@example.com", subject=f"Receipt {name}", body="x")
                            for name in ("ana", "gone", "bo")])
    session.commit()
    session.close()
    assert _queued(app) == 1  # one job for the batch
    result = CliRunner(app).invoke(["jobs", "work", "--burst"])
    assert result.exit_code == 0, result.output
    assert sorted(r for m in smtp.messages for r in m["to"]) == ["ana@example.com", "bo@example.com"]
    queue = jobs.make_queue(jobs.connect(app.extensions["ninety"].config.redis_url))
    retried = [queue.fetch_job(job_id) for registry in (queue.scheduled_job_registry, queue.failed_job_registry)
               for job_id in registry.get_job_ids()]
    assert [(job.func_name, job.args[0]["to"]) for job in retried] == [("core.jobs.deliver_mail", "gone@example.com")]
    assert smtp._controller.handler.conversations == 2  # the batch's one, then the refused receipt's own try
