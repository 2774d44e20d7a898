"""Verify everything the books promise, from the stored rows alone (`ninety ledger check`).

The triggers stop these breaks from happening; this finds them if something went around the triggers
(a restored backup, a superuser with session_replication_role = replica, a disk fault).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ledger.periods import ZERO_DIGEST, chain_digest, iter_period_entries

MAX_PER_KIND = 50


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    message: str
    entry_id: int | None = None
    account: str | None = None
    period: str | None = None


@dataclass
class CheckReport:
    entries: int = 0
    postings: int = 0
    accounts: int = 0
    closed_periods: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _fmt(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    units, rest = divmod(abs(int(micros)), 1_000_000)
    return f"{sign}{units}.{rest:06d}"


def check_books(session: Session) -> CheckReport:
    cur = session.connection().connection.dbapi_connection.cursor()
    report = CheckReport()
    cur.execute("SELECT (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM ledger_postings), "
                "(SELECT count(*) FROM ledger_accounts), (SELECT count(*) FROM ledger_periods)")
    report.entries, report.postings, report.accounts, report.closed_periods = cur.fetchone()
    add = report.problems.append

    cur.execute("""SELECT entry_id, currency, sum(CASE WHEN credit THEN -amount_micros ELSE amount_micros END)
                     FROM ledger_postings GROUP BY entry_id, currency
                   HAVING sum(CASE WHEN credit THEN -amount_micros ELSE amount_micros END) <> 0
                    ORDER BY entry_id LIMIT %s""", (MAX_PER_KIND,))
    for entry_id, currency, net in cur.fetchall():
        add(Problem("unbalanced_entry", f"entry {entry_id} does not balance in {currency.strip()}: debits minus "
                    f"credits is {_fmt(net)}", entry_id=entry_id))

    cur.execute("""SELECT e.id, count(p.entry_id) FROM ledger_entries e
                     LEFT JOIN ledger_postings p ON p.entry_id = e.id
                    GROUP BY e.id HAVING count(p.entry_id) < 2 ORDER BY e.id LIMIT %s""", (MAX_PER_KIND,))
    for entry_id, count in cur.fetchall():
        add(Problem("too_few_postings", f"entry {entry_id} has {count} posting(s); every entry needs two or more",
                    entry_id=entry_id))

    cur.execute("""SELECT entry_id, position, amount_micros FROM ledger_postings WHERE amount_micros <= 0
                    ORDER BY entry_id, position LIMIT %s""", (MAX_PER_KIND,))
    for entry_id, position, amount in cur.fetchall():
        add(Problem("non_positive_amount", f"entry {entry_id}, posting {position}: amount {_fmt(amount)} is not "
                    "positive", entry_id=entry_id))

    cur.execute("""SELECT p.entry_id, p.position, p.account_id, p.currency, a.currency FROM ledger_postings p
                     LEFT JOIN ledger_accounts a ON a.id = p.account_id
                     LEFT JOIN ledger_entries e ON e.id = p.entry_id
                    WHERE a.id IS NULL OR e.id IS NULL OR a.currency <> p.currency
                    ORDER BY p.entry_id LIMIT %s""", (MAX_PER_KIND,))
    for entry_id, position, account_id, currency, account_currency in cur.fetchall():
        if account_currency is None:
            what = f"names account id {account_id}, which does not exist"
        elif account_currency != currency:
            what = f"is in {currency.strip()} but its account is kept in {account_currency.strip()}"
        else:
            what = "belongs to no entry"
        add(Problem("orphan_posting", f"entry {entry_id}, posting {position} {what}", entry_id=entry_id))

    cur.execute("""SELECT currency, sum(debits_micros) - sum(credits_micros) FROM ledger_accounts
                    GROUP BY currency HAVING sum(debits_micros) <> sum(credits_micros) ORDER BY currency""")
    for currency, net in cur.fetchall():
        add(Problem("book_not_zero", f"the stored balances in {currency.strip()} do not sum to zero: debits "
                    f"minus credits is {_fmt(net)}"))
    cur.execute("""SELECT currency, sum(CASE WHEN credit THEN -amount_micros ELSE amount_micros END)
                     FROM ledger_postings GROUP BY currency
                   HAVING sum(CASE WHEN credit THEN -amount_micros ELSE amount_micros END) <> 0 ORDER BY currency""")
    for currency, net in cur.fetchall():
        add(Problem("book_not_zero", f"the postings in {currency.strip()} do not sum to zero: debits minus "
                    f"credits is {_fmt(net)}"))

    cur.execute("""SELECT a.code, a.currency, a.debits_micros, a.credits_micros, coalesce(s.debits, 0),
                          coalesce(s.credits, 0)
                     FROM ledger_accounts a
                     LEFT JOIN (SELECT account_id, sum(amount_micros) FILTER (WHERE NOT credit) AS debits,
                                       sum(amount_micros) FILTER (WHERE credit) AS credits
                                  FROM ledger_postings GROUP BY account_id) s ON s.account_id = a.id
                    WHERE a.debits_micros <> coalesce(s.debits, 0) OR a.credits_micros <> coalesce(s.credits, 0)
                    ORDER BY a.code, a.currency LIMIT %s""", (MAX_PER_KIND,))
    for code, currency, debits, credits, sum_debits, sum_credits in cur.fetchall():
        add(Problem("balance_mismatch", f"account {code} ({currency.strip()}) stores debits {_fmt(debits)} / "
                    f"credits {_fmt(credits)} but its postings sum to {_fmt(sum_debits)} / {_fmt(sum_credits)}",
                    account=code))

    cur.execute("""SELECT code, currency, balance_micros, min_balance_micros FROM ledger_accounts
                    WHERE min_balance_micros IS NOT NULL AND balance_micros < min_balance_micros
                    ORDER BY code LIMIT %s""", (MAX_PER_KIND,))
    for code, currency, bal, bound in cur.fetchall():
        add(Problem("bound_violated", f"account {code} ({currency.strip()}) has balance {_fmt(bal)}, below its "
                    f"bound {_fmt(bound)}", account=code))

    cur.execute("""SELECT r.id, r.reverses_id FROM ledger_entries r
                    WHERE r.reverses_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_entries e
                                                                     WHERE e.id = r.reverses_id)
                    LIMIT %s""", (MAX_PER_KIND,))
    for entry_id, reverses_id in cur.fetchall():
        add(Problem("dangling_reversal", f"entry {entry_id} reverses entry {reverses_id}, which does not exist",
                    entry_id=entry_id))

    _check_periods(session, cur, add)
    return report


def _check_periods(session: Session, cur, add) -> None:
    cur.execute("SELECT period, starts_at, ends_at, entry_count, last_entry_id, previous_digest, digest "
                "FROM ledger_periods ORDER BY starts_at")
    periods = cur.fetchall()
    previous = ZERO_DIGEST
    for period, starts_at, ends_at, entry_count, last_entry_id, previous_digest, digest in periods:
        if bytes(previous_digest) != previous:
            add(Problem("period_chain_broken", f"period {period}: its recorded previous digest does not match "
                        "the digest of the period closed before it", period=period))
        actual, count = chain_digest(bytes(previous_digest), iter_period_entries(session, starts_at, ends_at))
        if actual != bytes(digest) or count != entry_count:
            suspect = _first_changed_entry(session, cur, starts_at, ends_at, last_entry_id)
            where = f"; first suspect: entry {suspect}" if suspect else ""
            add(Problem("period_digest_mismatch",
                        f"period {period} was closed with {entry_count} entries and digest {bytes(digest).hex()[:16]}…"
                        f" but now has {count} entries and digest {actual.hex()[:16]}…: a closed period was "
                        f"changed{where}", period=period, entry_id=suspect))
        previous = bytes(digest)


def _first_changed_entry(session: Session, cur, starts_at, ends_at, last_entry_id) -> int | None:
    """Best effort: an entry of the period recorded after it closed, or one that no longer balances."""
    cur.execute("SELECT min(id) FROM ledger_entries WHERE effective_at >= %s AND effective_at < %s AND id > %s",
                (starts_at, ends_at, last_entry_id or 0))
    late = cur.fetchone()[0]
    if late is not None:
        return late
    cur.execute("""SELECT p.entry_id FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
                    WHERE e.effective_at >= %s AND e.effective_at < %s GROUP BY p.entry_id, p.currency
                   HAVING sum(CASE WHEN credit THEN -amount_micros ELSE amount_micros END) <> 0
                    ORDER BY p.entry_id LIMIT 1""", (starts_at, ends_at))
    row = cur.fetchone()
    return row[0] if row else None
