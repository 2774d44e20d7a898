"""`ninety jobs …`: the background-job worker (RQ) that sends email, and a look at the queue."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app import context


@click.group("jobs", help="Background jobs on the Redis job queue (RQ): emails today.")
def jobs_group():
    pass


@jobs_group.command("work", help="Run a job worker: process the queue until stopped (SIGTERM finishes the "
                                 "current job first), or with --burst until it is empty.")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option("--name", default=None, help="Worker name (default: RQ's, host and pid).")
@with_appcontext
def jobs_work(burst, name):
    from core import jobs
    from core.mail import SmtpMailer

    cfg = context.config()
    # media jobs (catalog.renditions) open their own sessions and find files under the media root
    jobs.configure(mailer=SmtpMailer.from_url(cfg.smtp_url), sessions=context.runtime().sessions,
                   media_path=cfg.media_path)
    connection = jobs.connect(cfg.queue_redis_url)
    try:
        jobs.work(connection, burst=burst, name=name)
        if burst:
            failed = jobs.make_queue(connection).failed_job_registry.count
            click.echo(f"queue empty; {failed} failed job{'s' if failed != 1 else ''} on record")
    finally:
        connection.close()


@jobs_group.command("status", help="Jobs waiting, failed and scheduled for retry.")
@with_appcontext
def jobs_status():
    from core import jobs

    connection = jobs.connect(context.config().queue_redis_url)
    queue = jobs.make_queue(connection)
    click.echo(f"queued {queue.count} · failed {queue.failed_job_registry.count} · "
               f"retrying {queue.scheduled_job_registry.count}")
    connection.close()


def register(group: click.Group) -> None:
    group.add_command(jobs_group)
