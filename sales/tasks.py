"""Sales' background jobs, on the RQ queue through `core.jobs` (enqueued only once the transaction commits)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.jobs import MAIL_RETRY, defer, enqueue, send_mail_later, worker_mailer
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

    failed = worker_mailer().send_many([Message(**message) for message in messages])
    connection = get_current_job().connection
    for message, error in zip(messages, failed, strict=True):
        if error is not None:
            enqueue(connection, "core.jobs.deliver_mail", message, retry=MAIL_RETRY)
    return sum(error is None for error in failed)
