"""`ninety ledger …`: verify the books, export them, print the trial balance."""

from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from flask.cli import with_appcontext

from app import context


@contextmanager
def _session():
    session = context.runtime().sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _as_of(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("write it as YYYY-MM-DD or an ISO-8601 time, e.g. 2026-10-31T23:59:59Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group("ledger", help="The books: verify them (check), write them out (export), trial balance.")
def ledger_group():
    pass


@ledger_group.command("check", help="Verify every promise of the books: each entry balanced, the whole book "
                                    "summing to zero per currency, stored balances equal to their postings, "
                                    "bounds held, closed periods' digests intact. Exits 1 naming what is off.")
@with_appcontext
def check_cmd():
    from ledger.checks import check_books

    with _session() as session:
        report = check_books(session)
    summary = (f"{report.entries} entries, {report.postings} postings, {report.accounts} accounts, "
               f"{report.closed_periods} closed periods")
    if report.ok:
        click.echo(f"ok: the books balance ({summary})")
        return
    click.echo(f"FAILED: {len(report.problems)} problem(s) in the books ({summary})", err=True)
    for problem in report.problems:
        click.echo(f"  [{problem.kind}] {problem.message}", err=True)
    sys.exit(1)


@ledger_group.command("export", help="Write the books: beancount (passes bean-check), csv (the journal, one "
                                     "row per posting) or trial-balance. Example: "
                                     "ninety ledger export --format beancount -o books.beancount")
@click.option("--format", "fmt", type=click.Choice(["beancount", "csv", "trial-balance"]), default="beancount",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-",
              show_default=True, help="File to write; - for standard output.")
@with_appcontext
def export_cmd(fmt, output):
    from ledger.exports import write_beancount, write_csv, write_trial_balance

    writer = {"beancount": write_beancount, "csv": write_csv, "trial-balance": write_trial_balance}[fmt]
    with _session() as session, click.open_file(output, "w", encoding="utf-8") as out:
        count = writer(session, out)
    if output != "-":
        click.echo(f"wrote {fmt} to {output} ({count} {'accounts' if fmt == 'trial-balance' else 'entries'})",
                   err=True)


@ledger_group.command("trial-balance", help="Print every account's debits, credits and balance, with totals "
                                            "per currency (optionally as of a time).")
@click.option("--as-of", default=None, help="Only entries effective up to this time (YYYY-MM-DD or ISO-8601).")
@with_appcontext
def trial_balance_cmd(as_of):
    from ledger.exports import write_trial_balance

    out = io.StringIO()
    with _session() as session:
        write_trial_balance(session, out, as_of=_as_of(as_of))
    click.echo(out.getvalue(), nl=False)


def register(group: click.Group) -> None:
    group.add_command(ledger_group)
