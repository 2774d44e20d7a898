"""The books written out: beancount (checked by `bean-check`), the journal as CSV, the trial balance."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy.orm import Session

from ledger.accounts import beancount_name
from ledger.services import trial_balance

CSV_COLUMNS = ["entry_id", "effective_at", "idempotency_key", "description", "event", "reverses_id", "position",
               "account", "currency", "side", "amount_micros", "amount", "ref"]


def decimal_text(micros: int) -> str:
    """Exact decimal with six places: 1234567 -> "1.234567" (micros are never rounded in an export)."""
    sign = "-" if micros < 0 else ""
    units, rest = divmod(abs(int(micros)), 1_000_000)
    return f"{sign}{units}.{rest:06d}"


def _quote(text: str) -> str:
    cleaned = " ".join(str(text).split())
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def iter_journal(session: Session, *, as_of: datetime | None = None) -> Iterator[tuple]:
    """(entry id, effective_at, key, description, metadata, reverses_id, [(position, code, currency, credit,
    amount, ref)]) for every entry, in effective order, streamed."""
    conn = session.connection().connection.dbapi_connection
    with conn.cursor(name="ledger_journal_export") as cur:
        cur.itersize = 2000
        cur.execute(
            """
            SELECT e.id, e.effective_at, e.idempotency_key, e.description, e.metadata, e.reverses_id,
                   array_agg(ARRAY[p.position::text, a.code, p.currency::text, p.credit::text,
                                   p.amount_micros::text, coalesce(p.ref, '')] ORDER BY p.position)
              FROM ledger_entries e
              JOIN ledger_postings p ON p.entry_id = e.id
              JOIN ledger_accounts a ON a.id = p.account_id
             WHERE %s::timestamptz IS NULL OR e.effective_at <= %s
             GROUP BY e.id ORDER BY e.effective_at, e.id
            """, (as_of, as_of))
        for entry_id, at, key, description, metadata, reverses_id, postings in cur:
            rows = [(int(pos), code, currency.strip(), credit == "true", int(amount), ref or None)
                    for pos, code, currency, credit, amount, ref in postings]
            yield entry_id, at.astimezone(UTC), key, description, metadata, reverses_id, rows


def write_beancount(session: Session, out: TextIO) -> int:
    """Write the books as a beancount file; returns the number of transactions."""
    cur = session.connection().connection.dbapi_connection.cursor()
    cur.execute("""SELECT a.code, min(e.effective_at) FROM ledger_accounts a
                     JOIN ledger_postings p ON p.account_id = a.id JOIN ledger_entries e ON e.id = p.entry_id
                    GROUP BY a.code ORDER BY a.code""")
    opens = cur.fetchall()
    cur.execute("SELECT DISTINCT currency FROM ledger_accounts ORDER BY 1")
    currencies = [row[0].strip() for row in cur.fetchall()]
    out.write(";; Ninety's books, exported from the ledger. Amounts are exact to the micro (6 places).\n")
    out.write('option "title" "Ninety"\n')
    for currency in currencies:
        out.write(f'option "operating_currency" "{currency}"\n')
    out.write('option "tolerance_multiplier" "0"\n')
    out.write('option "inferred_tolerance_default" "*:0"\n\n')
    for code, first in opens:
        out.write(f"{first.astimezone(UTC).date().isoformat()} open {beancount_name(code)}\n")
    out.write("\n")
    count = 0
    for entry_id, at, key, description, metadata, reverses_id, postings in iter_journal(session):
        out.write(f"{at.date().isoformat()} * {_quote(description or key)}\n")
        out.write(f"  entry-id: {entry_id}\n")
        out.write(f"  idempotency-key: {_quote(key)}\n")
        out.write(f"  effective-at: {_quote(at.isoformat())}\n")
        if metadata.get("event"):
            out.write(f"  event: {_quote(metadata['event'])}\n")
        if reverses_id:
            out.write(f"  reverses: {reverses_id}\n")
        for _, code, currency, credit, amount, ref in postings:
            out.write(f"  {beancount_name(code)}  {decimal_text(-amount if credit else amount)} {currency}\n")
            if ref:
                out.write(f"    ref: {_quote(ref)}\n")
        out.write("\n")
        count += 1
    return count


def write_csv(session: Session, out: TextIO) -> int:
    """The journal, one row per posting; returns the number of entries."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry_id, at, key, description, metadata, reverses_id, postings in iter_journal(session):
        for position, code, currency, credit, amount, ref in postings:
            writer.writerow([entry_id, at.isoformat(), key, description, metadata.get("event", ""),
                             reverses_id or "", position, code, currency, "credit" if credit else "debit", amount,
                             decimal_text(amount), ref or ""])
        count += 1
    return count


def write_trial_balance(session: Session, out: TextIO, *, as_of: datetime | None = None) -> int:
    """A plain-text trial balance with totals per currency; returns the number of accounts."""
    rows = trial_balance(session, as_of=as_of)
    width = max([len(r.account) for r in rows] + [7])
    out.write(f"Trial balance{' as of ' + as_of.isoformat() if as_of else ''}\n")
    header = f"{'account':<{width}}  cur  {'debits':>20}  {'credits':>20}  {'balance':>20}\n"
    totals: dict[str, list[int]] = {}
    current = None
    for row in rows:
        if row.currency != current:
            current = row.currency
            out.write("\n" + header)
        out.write(f"{row.account:<{width}}  {row.currency}  {decimal_text(row.debits_micros):>20}  "
                  f"{decimal_text(row.credits_micros):>20}  {decimal_text(row.balance_micros):>20}\n")
        total = totals.setdefault(row.currency, [0, 0])
        total[0] += row.debits_micros
        total[1] += row.credits_micros
    for currency, (debits, credits) in totals.items():
        state = "balanced" if debits == credits else "NOT BALANCED"
        out.write(f"\n{'total':<{width}}  {currency}  {decimal_text(debits):>20}  {decimal_text(credits):>20}  "
                  f"{state}\n")
    return len(rows)
