"""Sales' background jobs, on the RQ queue through `core.jobs` (enqueued only once the transaction commits)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.jobs import MAIL_RETRY, defer, enqueue, send_mail_later
from core.mail import Message


def send_receipts(session: Session, messages: list[Message]) -> None:
    """Email the receipts after the session commits. Many (a batch of sales fulfilled together) are one job,
    which sends them in one SMTP conversation: the commit that answers the webhooks waits for one enqueue,
    not one per sale, the worker runs one job, not one per sale, and a receipt that fails is still retried on
    its own."""
    if len(messages) == 1:
        send_mail_later(session, messages[0])
    elif messages:
        defer(session, "sales.tasks.fan_out_receipts", [message.as_dict() for message in messages])


def fan_out_receipts(messages: list[dict]) -> int:
    """The job: send the receipts through the worker's mailer in one conversation (`send_many`); each one
    that fails gets a `core.jobs.deliver_mail` job of its own, retried, on the queue this job came from.
    How many were sent now."""
    from rq import get_current_job

    from core.jobs import worker_context

    mailer = worker_context().mailer
    if mailer is None:
        raise RuntimeError("no mailer configured in this worker: run it with `ninety jobs work`")
    mails = [Message(**message) for message in messages]
    send_many = getattr(mailer, "send_many", None)
    failed = send_many(mails) if send_many else [_send_one(mailer, mail) for mail in mails]
    connection = get_current_job().connection
    for message, error in zip(messages, failed, strict=True):
        if error is not None:
            enqueue(connection, "core.jobs.deliver_mail", message, retry=MAIL_RETRY)
    return sum(error is None for error in failed)


def _send_one(mailer, mail: Message):
    try:
        mailer.send(mail)
    except Exception as exc:  # noqa: BLE001 - retried on its own
        return exc
    return None
