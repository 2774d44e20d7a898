"""Ad-server commands: `ninety worker` (the impression flush), `ninety ads fund`, `ninety ads reconcile`."""

from __future__ import annotations

import socket

import click
from flask.cli import with_appcontext

from app import context
from app.cli.core import stop_requested


@click.command("worker", help="Flush counted impressions from the Redis stream into impression rows and ledger "
                              "entries (a consumer group: run several with different --consumer names).")
@click.option("--consumer", default=None, help="Consumer name in the group (default: <host>-worker). Restarting "
                                               "with the same name finishes the batch a crash left pending.")
@click.option("--batch-size", type=int, default=None, help="Impressions per batch (default WORKER_BATCH_SIZE).")
@click.option("--block-ms", type=int, default=1000, show_default=True, help="How long to wait for new entries.")
@click.option("--until-idle", is_flag=True, help="Exit once the stream is drained instead of waiting forever.")
@click.option("--processes", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Worker processes dividing the stream's shards (one per core; names <consumer>-0, -1 …).")
@with_appcontext
def worker_cmd(consumer, batch_size, block_ms, until_idle, processes):
    from royalties.worker import run_processes, run_worker

    runtime = context.runtime()
    stopping = stop_requested()
    name = consumer or f"{socket.gethostname()}-worker"
    batch_size = batch_size or runtime.config.worker_batch_size
    click.echo(f"worker {name}: flushing the impression stream's shards in {processes} process(es) "
               "(Ctrl-C to stop)")
    if processes > 1:
        stats = run_processes(runtime.config.database_url, runtime.config.redis_url, processes=processes,
                              consumer=name, batch_size=batch_size, block_ms=block_ms, until_idle=until_idle,
                              stop=stopping)
    else:
        stats = run_worker(runtime.redis, runtime.sessions, consumer=name, batch_size=batch_size,
                           block_ms=block_ms, stop=stopping, max_idle_loops=1 if until_idle else None)
    click.echo(f"worker {name}: {stats.impressions} impressions in {stats.batches} batches, "
               f"{stats.invalid} invalid recorded, {stats.dead_letters} dead letters")


@click.group("ads", help="The ad server: fund advertisers, reconcile Redis budgets with the ledger.")
def ads_group():
    pass


@ads_group.command("fund", help="Credit an advertiser's prepaid balance with a ledger entry (money received by "
                                "bank transfer). Example: ninety ads fund 3 250.00 --reference INV-2026-11")
@click.argument("advertiser")
@click.argument("amount")
@click.option("--reference", required=True, help="The payment's reference; funding twice with one reference "
                                                 "records it once.")
@with_appcontext
def ads_fund(advertiser, amount, reference):
    from sqlalchemy import func, select

    from adserver.models import Advertiser, AdvertiserMember
    from adserver.services import fund
    from core.errors import NinetyError
    from core.money import Money
    from core.users import User

    runtime = context.runtime()
    session = runtime.sessions()
    try:
        if advertiser.isdigit():
            found = session.get(Advertiser, int(advertiser))
        else:
            found = session.scalar(select(Advertiser).join(AdvertiserMember).join(User, User.id == AdvertiserMember.user_id)
                                   .where(func.lower(User.email) == advertiser.lower()).order_by(Advertiser.id))
        if found is None:
            raise click.ClickException(f"no advertiser {advertiser!r} (give its id or a member's email)")
        money = Money.parse(amount, found.currency, whole_minor_units=True)
        entry_id = fund(session, runtime.redis, advertiser_id=found.id, amount_micros=money.micros,
                        currency=found.currency, clock=runtime.clock,
                        idempotency_key=f"advertiser_funding:{found.id}:{reference.strip()[:120]}",
                        note=reference.strip()[:120])
        session.commit()  # the command owns the transaction; the spendable credit follows the commit
        click.echo(f"funded advertiser {found.id} ({found.name}) with {money}: ledger entry {entry_id}")
    except NinetyError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from None
    finally:
        session.close()


@ads_group.command("reconcile", help="Check each advertiser's budgets in Redis against the ledger, the impression "
                                     "rows and the unflushed stream; name every impossible state (pending below "
                                     "zero, spendable above the ledger balance, charges the stream and the rows do "
                                     "not account for). Exit status 1 if there is one; --fix rewrites Redis.")
@click.option("--fix", is_flag=True, help="Set Redis to the values the durable records and the stream imply.")
@with_appcontext
def ads_reconcile(fix):
    from sqlalchemy import func, select

    from adserver.budgets import reconcile
    from royalties.models import ParkedEntry

    runtime = context.runtime()
    session = runtime.sessions()
    try:
        # Parked (and written-off) flush entries: impressions stored and charged in Redis, never debited.
        parked = dict(session.execute(
            select(ParkedEntry.advertiser_id, func.sum(ParkedEntry.amount_micros))
            .where(ParkedEntry.status.in_(("parked", "written_off"))).group_by(ParkedEntry.advertiser_id)).all())
        rows = reconcile(runtime.redis, session, fix=fix, parked_micros=parked)
    finally:
        session.close()
    bad = 0
    for row in rows:
        state = "ok" if row.matches else ("fixed" if fix else "IMPOSSIBLE")
        if not row.seeded and row.matches:
            state = "ok (not in Redis yet: seeded from the ledger on first use)"
        bad += 0 if row.matches or fix else 1
        click.echo(f"advertiser {row.advertiser_id} {row.currency}: ledger {row.ledger_balance_micros} "
                   f"charged {row.charged_micros} flushed {row.flushed_micros} pending {row.pending_micros} "
                   f"unflushed {row.unflushed_micros} parked {row.parked_micros} expected {row.expected_avail_micros} "
                   f"redis {row.redis_avail_micros} {state}")
        for problem in row.problems:
            click.echo(f"  advertiser {row.advertiser_id}: {problem}")
    click.echo(f"{len(rows)} advertisers, {bad} with impossible states")
    if bad:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(worker_cmd)
    group.add_command(ads_group)


@ads_group.command("archive-month", help="Detach a closed month's impression, invalid-traffic, play and download "
                                         "partitions into the archive schema (the books are not touched). "
                                         "Example: ninety ads archive-month 2026-10")
@click.argument("period")
@with_appcontext
def ads_archive_month(period):
    from core.errors import NinetyError
    from core.partitions import archive_month
    from ledger.services import is_period_closed
    from royalties.periods import bounds

    runtime = context.runtime()
    session = runtime.sessions()
    try:
        bounds(period)  # a month, or InvalidPeriod saying how to write one
        if not is_period_closed(session, period):
            raise click.ClickException(f"{period} is not closed; close it (ninety royalties close {period}) first")
        moved = archive_month(session, period)
        session.commit()  # the command owns the transaction
        click.echo(f"archived {period}: {', '.join(moved)}" if moved else f"{period}: nothing left to archive")
    except NinetyError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from None
    finally:
        session.close()
