"""The SQL ledger against a plain in-memory model (TigerBeetle's reference-model idea).

Random sequences of post, duplicate post, conflicting duplicate, batch post, reverse, close period and post
into a closed period run against both; after every step the balances, the entries and the trial balance
must agree exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from ledger import accounts
from ledger.errors import BalanceBoundViolated, IdempotencyConflict, PeriodClosed
from ledger.periods import period_bounds
from ledger.services import Entry, Posting, balance, get_entry, post, post_many, reverse, trial_balance

ACCOUNTS = [accounts.STRIPE, accounts.BANK, accounts.INCOME_ADS, accounts.PROCESSING_FEES,
            accounts.payee_payable(1), accounts.payee_payable(2), accounts.advertiser_prepaid(1),
            accounts.advertiser_prepaid(2)]
BOUNDED = {accounts.advertiser_prepaid(1), accounts.advertiser_prepaid(2)}
CURRENCIES = ["USD", "EUR"]
MONTHS = ["2026-09", "2026-10", "2026-11", "2026-12"]
REVERSAL_AT = datetime(2027, 6, 1, tzinfo=UTC)
KEYS = [f"k{i}" for i in range(12)]

amounts = st.integers(min_value=1, max_value=5_000_000)


@st.composite
def entries(draw, key=None):
    key = key or draw(st.sampled_from(KEYS))
    month = draw(st.sampled_from(MONTHS))
    start, end = period_bounds(month)
    when = start + timedelta(seconds=draw(st.integers(0, int((end - start).total_seconds()) - 1)))
    currency = draw(st.sampled_from(CURRENCIES))
    debits = draw(st.lists(st.tuples(st.sampled_from(ACCOUNTS), amounts), min_size=1, max_size=2))
    total = sum(a for _, a in debits)
    credit_accounts = draw(st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=min(2, total)))
    first = draw(st.integers(1, total)) if len(credit_accounts) == 2 and total > 1 else total
    if len(credit_accounts) == 2 and first == total:
        credit_accounts = credit_accounts[:1]
    credit_amounts = [first, total - first] if len(credit_accounts) == 2 else [total]
    postings = [Posting(acc, "debit", amt, currency) for acc, amt in debits]
    postings += [Posting(acc, "credit", amt, currency, draw(st.sampled_from([None, "track:1"])))
                 for acc, amt in zip(credit_accounts, credit_amounts, strict=True)]
    return Entry(key, when, draw(st.sampled_from(["sale", "flush", "fee"])), postings,
                 {"event": draw(st.sampled_from(["sale", "ad_flush"]))})


def signed(code: str, side: str, amount: int) -> int:
    """The change of the account's normal-side balance."""
    debit_normal = accounts.is_debit_normal(code)
    return amount if (side == "debit") == debit_normal else -amount


def content(entry: Entry) -> tuple:
    return (entry.effective_at, entry.description, entry.metadata or {}, entry.reverses_id,
            tuple((p.account, p.side, p.amount_micros, p.currency, p.ref) for p in entry.postings))


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, sessions, database_url):
        super().__init__()
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("SET ninety.allow_truncate = 'on'")
            conn.execute("TRUNCATE ledger_postings, ledger_entries, ledger_periods, ledger_accounts CASCADE")
        self.session = sessions()
        self.entries: dict[str, tuple[tuple, int, Entry]] = {}  # key -> (content, id, entry)
        self.balances: dict[tuple[str, str], int] = {}
        self.closed_until: datetime | None = None
        self.reversed: dict[int, int] = {}  # entry id -> reversal id
        self.by_id: dict[int, Entry] = {}

    def teardown(self):
        self.session.rollback()
        self.session.close()

    # --- the model's verdict on a batch -----------------------------------------------------------
    def expect(self, batch: list[Entry]):
        """(error class or None, entries that would be new)."""
        seen: dict[str, tuple] = {}
        for entry in batch:
            if entry.idempotency_key in seen and seen[entry.idempotency_key] != content(entry):
                return IdempotencyConflict, []
            seen[entry.idempotency_key] = content(entry)
        new = []
        for key in seen:
            if key not in self.entries:
                new.append(next(e for e in batch if e.idempotency_key == key))
        if any(self.closed_until and e.effective_at < self.closed_until for e in new):
            return PeriodClosed, []
        after = dict(self.balances)
        for entry in new:
            for p in entry.postings:
                k = (p.account, p.currency)
                after[k] = after.get(k, 0) + signed(p.account, p.side, p.amount_micros)
        if any(after[k] < 0 for k in after if k[0] in BOUNDED):
            return BalanceBoundViolated, []
        if any(key in self.entries and self.entries[key][0] != c for key, c in seen.items()):
            return IdempotencyConflict, []
        return None, new

    def apply(self, entry: Entry, entry_id: int) -> None:
        self.entries[entry.idempotency_key] = (content(entry), entry_id, entry)
        self.by_id[entry_id] = entry
        for p in entry.postings:
            k = (p.account, p.currency)
            self.balances[k] = self.balances.get(k, 0) + signed(p.account, p.side, p.amount_micros)

    def run_batch(self, batch: list[Entry], call):
        error, new = self.expect(batch)
        if error is not None:
            try:
                call()
            except error:
                return None
            raise AssertionError(f"expected {error.__name__}")
        ids = call()
        ids = ids if isinstance(ids, list) else [ids]
        for entry, entry_id in zip(batch, ids, strict=True):
            if entry.idempotency_key in self.entries:
                assert self.entries[entry.idempotency_key][1] == entry_id
            elif entry in new:
                self.apply(entry, entry_id)
        return ids

    # --- rules -------------------------------------------------------------------------------------
    @rule(entry=entries())
    def post_one(self, entry):
        self.run_batch([entry], lambda: post(self.session, entry))

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def post_duplicate(self, data):
        key = data.draw(st.sampled_from(sorted(self.entries)))
        entry = self.entries[key][2]
        assert post(self.session, entry) == self.entries[key][1]

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def post_conflicting_duplicate(self, data):
        key = data.draw(st.sampled_from(sorted(self.entries)))
        entry = data.draw(entries(key=key))
        self.run_batch([entry], lambda: post(self.session, entry))

    @rule(batch=st.lists(entries(), min_size=1, max_size=6))
    def post_batch(self, batch):
        self.run_batch(batch, lambda: post_many(self.session, batch))

    @precondition(lambda self: self.by_id)
    @rule(data=st.data())
    def reverse_entry(self, data):
        entry_id = data.draw(st.sampled_from(sorted(self.by_id)))
        original = self.by_id[entry_id]
        metadata = {"event": "reversal", "reverses": entry_id, "reason": "refund"}
        if (original.metadata or {}).get("event"):
            metadata["original_event"] = original.metadata["event"]
        mirrored = Entry(f"reversal:{entry_id}", REVERSAL_AT, f"Reversal of entry {entry_id}: refund", [
            Posting(p.account, "credit" if p.side == "debit" else "debit", p.amount_micros, p.currency, p.ref)
            for p in original.postings], metadata, entry_id)
        if entry_id in self.reversed:
            assert reverse(self.session, entry_id, "again", effective_at=REVERSAL_AT) == self.reversed[entry_id]
            return
        error, _ = self.expect([mirrored])
        if error is not None:
            assert error is BalanceBoundViolated
            try:
                reverse(self.session, entry_id, "refund", effective_at=REVERSAL_AT)
            except BalanceBoundViolated:
                return
            raise AssertionError("expected BalanceBoundViolated")
        reversal_id = reverse(self.session, entry_id, "refund", effective_at=REVERSAL_AT)
        self.reversed[entry_id] = reversal_id
        self.apply(mirrored, reversal_id)

    @rule(month=st.sampled_from(MONTHS[:3]))
    def close(self, month):
        from ledger.services import close_period, is_period_closed

        closed = close_period(self.session, month)
        assert closed.period == month
        end = period_bounds(month)[1]
        self.closed_until = max(self.closed_until or end, end)
        assert is_period_closed(self.session, month)

    # --- comparison after every step ----------------------------------------------------------------
    @invariant()
    def balances_agree(self):
        for (code, currency), expected in self.balances.items():
            assert balance(self.session, code, currency) == expected, (code, currency)
        rows = trial_balance(self.session)
        assert {(r.account, r.currency): r.balance_micros for r in rows} == \
            {k: v for k, v in self.balances.items()}
        for currency in CURRENCIES:
            assert sum(r.debits_micros - r.credits_micros for r in rows if r.currency == currency) == 0

    @invariant()
    def entries_agree(self):
        rows = self.session.execute(text(
            "SELECT e.idempotency_key, e.id, a.code, p.credit, p.amount_micros, p.currency, p.ref "
            "FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id "
            "JOIN ledger_accounts a ON a.id = p.account_id ORDER BY e.id, p.position")).all()
        # The machine owns the transaction (the ledger never commits): each step is committed here, so the
        # model is compared with what another session would see.
        self.session.commit()
        stored: dict[tuple[str, int], list] = {}
        for key, entry_id, code, credit, amount, currency, ref in rows:
            stored.setdefault((key, entry_id), []).append(
                (code, "credit" if credit else "debit", amount, currency.strip(), ref))
        assert stored == {(key, entry_id): [(p.account, p.side, p.amount_micros, p.currency, p.ref)
                                            for p in entry.postings]
                          for key, (_, entry_id, entry) in self.entries.items()}
        if self.entries:
            key, (_, entry_id, entry) = next(iter(self.entries.items()))
            assert get_entry(self.session, entry_id).description == entry.description


def test_ledger_matches_the_model(app, database_url):
    sessions = app.extensions["ninety"].sessions
    run_state_machine_as_test(lambda: LedgerMachine(sessions, database_url),
                              settings=settings(max_examples=30, stateful_step_count=20, deadline=None))
