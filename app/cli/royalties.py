"""`ninety royalties close YYYY-MM|parked|settle` and `ninety payouts draft|approve|execute|show|sepa|csv`."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from app import context
from core.db import retrying
from core.errors import NinetyError


def _session():
    return context.runtime().sessions()


def _user_id(session, email: str | None, *, required: bool) -> int | None:
    from core.users import User

    if not email:
        if required:
            raise click.UsageError("say who you are with --as EMAIL (a finance user); four eyes need names")
        return None
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user.id


def _run(fn):
    """Run a command body in one transaction (the command owns it: committed when the body returns, rerun
    from the start on a deadlock); turn a domain refusal into a clear message and exit code 1."""
    try:
        return retrying(context.runtime().sessions, fn)
    except NinetyError as exc:
        raise click.ClickException(exc.message) from None


def stripe_client():
    from payments.stripe_client import make_stripe_client

    cfg = context.config()
    return make_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base)


@click.group("royalties", help="Royalty months: close a month (distribute the key-mode pools, close the books).")
def royalties_group():
    pass


@royalties_group.command("close", help="Close a month, e.g. `ninety royalties close 2026-10`. Refuses until the "
                                       "month is over and every impression before its end is flushed. Idempotent.")
@click.argument("period")
@click.option("--as", "as_email", default=None, help="The finance user closing it (recorded).")
@with_appcontext
def close_cmd(period, as_email):
    from core.money import Money
    from royalties.services import close_period

    def body(session):
        record = close_period(session, context.redis(), period, clock=context.clock(),
                              closed_by=_user_id(session, as_email, required=False))
        click.echo(f"{record.period} closed (cut-off {record.cutoff:%Y-%m-%d %H:%M} UTC)")
        for currency, figures in sorted(record.summary.items()):
            click.echo(f"  {currency}: pool {Money(figures['pool_micros'], currency)}, to tracks "
                       f"{Money(figures['attributed_micros'], currency)}, unattributed "
                       f"{Money(figures['unattributed_micros'], currency)} "
                       f"({figures['unattributed_listeners']} of {figures['listeners']} listeners)")

    _run(body)


@royalties_group.command("parked", help="List the ad flush entries the ledger refused and parked (an advertiser "
                                        "out of prepaid money, a closed period), with their reasons.")
@click.option("--all", "show_all", is_flag=True, help="Include settled ones (retried or written off).")
@with_appcontext
def parked_cmd(show_all):
    from core.money import Money
    from royalties.suspense import parked_entries

    def body(session):
        rows = parked_entries(session, status=None if show_all else "parked", limit=10_000)
        for p in rows:
            click.echo(f"parked {p.id} {p.period} advertiser {p.advertiser_id} campaigns "
                       f"{','.join(map(str, p.campaign_ids))} {Money(p.amount_micros, p.currency).amount_str(full=True)} "
                       f"{p.currency} {p.impressions} impressions, parked {p.parked_at:%Y-%m-%d %H:%M} UTC: "
                       f"{p.status.replace('_', ' ')}" + (f" (entry {p.settled_entry_id})" if p.settled_entry_id else "")
                       + f"\n  {p.reason_code}: {p.reason}")
        click.echo(f"{len(rows)} parked entr{'y' if len(rows) == 1 else 'ies'}"
                   + ("" if show_all else " waiting to be settled"))

    _run(body)


@royalties_group.command("settle", help="Settle a parked entry: --retry posts it as built (after the advertiser "
                                        "has topped up), --write-off has the platform absorb it (artists still paid).")
@click.argument("parked_id", type=int)
@click.option("--retry", "how", flag_value="retry", help="Post the entry with its original idempotency key.")
@click.option("--write-off", "how", flag_value="write-off", help="Dr expenses:bad-debt, Cr what it owed payees.")
@click.option("--as", "as_email", default=None, help="The finance user settling it (recorded).")
@with_appcontext
def settle_cmd(parked_id, how, as_email):
    from royalties import suspense

    if how is None:
        raise click.UsageError("say how to settle it: --retry or --write-off")

    def body(session):
        settle = suspense.retry if how == "retry" else suspense.write_off
        parked = settle(session, parked_id, settled_by=_user_id(session, as_email, required=False),
                        clock=context.clock())
        click.echo(f"parked {parked.id}: {parked.status.replace('_', ' ')} (entry {parked.settled_entry_id})")

    _run(body)


@click.group("payouts", help="Payout batches: draft for a closed month, approve (a second finance user), "
                             "execute or resume, show, and export the SEPA file.")
def payouts_group():
    pass


@payouts_group.command("draft", help="Draft the batch for a closed month, e.g. `ninety payouts draft 2026-10 --as "
                                     "finance@ninety.test`.")
@click.argument("period")
@click.option("--as", "as_email", default=None, help="The finance user drafting it.")
@click.option("--currency", default=None, help="Currency of the batch (default: NINETY_CURRENCY).")
@with_appcontext
def draft_cmd(period, as_email, currency):
    from royalties.services import draft_batch

    def body(session):
        cfg = context.config()
        cur = (currency or cfg.currency).upper()
        batch = draft_batch(session, period, currency=cur, drafted_by=_user_id(session, as_email, required=True),
                            clock=context.clock(), threshold_micros=cfg.threshold_micros(cur))
        _show(session, batch.id)

    _run(body)


@payouts_group.command("approve", help="Approve a drafted batch; the drafter cannot approve their own.")
@click.argument("batch_id", type=int)
@click.option("--as", "as_email", default=None, help="The approving finance user (not the drafter).")
@with_appcontext
def approve_cmd(batch_id, as_email):
    from royalties.services import approve_batch

    def body(session):
        batch = approve_batch(session, batch_id, approved_by=_user_id(session, as_email, required=True),
                              clock=context.clock())
        click.echo(f"batch {batch.id} approved")

    _run(body)


@payouts_group.command("execute", help="Pay an approved batch, or resume one whose run stopped; never pays twice.")
@click.argument("batch_id", type=int)
@with_appcontext
def execute_cmd(batch_id):
    from royalties.rails import default_rails
    from royalties.services import execute_batch

    def report(step, item):
        if step in ("settled", "reversed"):
            click.echo(f"  item {item.id}: {step}" + (f" ({item.failure_reason})" if step == "reversed" else ""))

    def body(session):
        result = execute_batch(session, batch_id, rails=default_rails(stripe_client()), clock=context.clock(),
                               checkpoint=report)
        click.echo(f"batch {batch_id}: {result.status}, {result.done} of {result.total} items finished "
                   f"({result.counts['settled']} settled, {result.counts['reversed']} reversed)")
        if result.stopped_reason:
            raise click.ClickException(f"stopped: {result.stopped_reason}; run `ninety payouts execute {batch_id}` "
                                       "again to resume")

    _run(body)


@payouts_group.command("show", help="Show a batch: status, totals, items and who was left out and why.")
@click.argument("batch_id", type=int)
@with_appcontext
def show_cmd(batch_id):
    _run(lambda session: _show(session, batch_id))


def _show(session, batch_id: int) -> None:
    from core.money import Money
    from royalties.services import exclusions, get_batch, items, progress

    batch = get_batch(session, batch_id)
    state = progress(session, batch_id)
    click.echo(f"batch {batch.id} for {batch.period} in {batch.currency}: {batch.status}; "
               f"{batch.item_count} items, total {Money(batch.total_micros, batch.currency)}; "
               f"{state.counts}")
    for item in items(session, batch_id, limit=10_000):
        line = (f"  item {item.id} payee {item.payee_id} {item.rail:<14} {Money(item.amount_micros, item.currency)} "
                f"(carried {Money(item.carried_micros, item.currency).amount_str(full=True)}) {item.status}  "
                f"{item.reference}")
        if item.failure_reason:
            line += f"  [{item.failure_reason}]"
        click.echo(line)
    left_out = exclusions(session, batch_id, limit=10_000)
    if left_out:
        click.echo("left out:")
        for exc in left_out:
            click.echo(f"  payee {exc.payee_id} {Money(exc.balance_micros, batch.currency).amount_str(full=True)}: "
                       f"{exc.reason}")


@payouts_group.command("sepa", help="Write the batch's SEPA pain.001.001.03 file to stdout (validated by its XSD).")
@click.argument("batch_id", type=int)
@with_appcontext
def sepa_cmd(batch_id):
    from royalties.services import sepa_file

    def body(session):
        cfg = context.config()
        xml = sepa_file(session, batch_id, debtor_name=cfg.sepa_debtor_name, debtor_iban=cfg.sepa_debtor_iban,
                        debtor_bic=cfg.sepa_debtor_bic, execution_date=(context.clock().now() + timedelta(days=1)).date())
        sys.stdout.buffer.write(xml) if hasattr(sys.stdout, "buffer") else click.echo(xml.decode())

    _run(body)


@payouts_group.command("csv", help="Write the batch's manual payouts as CSV to stdout.")
@click.argument("batch_id", type=int)
@with_appcontext
def csv_cmd(batch_id):
    from royalties.services import manual_csv

    _run(lambda session: click.echo(manual_csv(session, batch_id), nl=False))


def register(group: click.Group) -> None:
    group.add_command(royalties_group)
    group.add_command(payouts_group)
