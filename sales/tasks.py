"""Sales' background jobs, on the RQ queue through `core.jobs` (enqueued only once the transaction commits)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.jobs import MAIL_RETRY, defer, enqueue, send_mail_later
from core.mail import Message


def send_receipts(session: Session, messages: list[Message]) -> None:
    """Email the receipts after the session commits. Many (a batch of sales fulfilled together) are one job,
    which the worker fans out into one delivery job per receipt: the commit that answers the webhooks waits
    for one enqueue, not one per sale, and each receipt is still retried on its own."""
    if len(messages) == 1:
        send_mail_later(session, messages[0])
    elif messages:
        defer(session, "sales.tasks.fan_out_receipts", [message.as_dict() for message in messages])


def fan_out_receipts(messages: list[dict]) -> int:
    """The job: one `core.jobs.deliver_mail` job per receipt, on the queue this job came from."""
    from rq import get_current_job

    connection = get_current_job().connection
    for message in messages:
        enqueue(connection, "core.jobs.deliver_mail", message, retry=MAIL_RETRY)
    return len(messages)
