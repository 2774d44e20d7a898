"""Statements: per payee per month, every figure straight from the ledger.

Opening balance; earnings by track and by source (ads at the download gate, the key-mode pool, sales, and
the sales' refunds and disputes, signed);
adjustments and reversals; payouts; closing balance; and the payout drafted for the month with its carried
rest. `closing = opening + earnings + adjustments - payouts` holds by construction, and a test reconciles
each figure with `ledger.services.balance`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.money import Money
from rights.services import held_lines
from royalties.models import PayoutBatch, PayoutExclusion, PayoutItem, RoyaltyPeriod
from royalties.periods import bounds
from royalties.subscriber_pool import subscribers_reached

SOURCES = {"ad_flush": "Ads at the download gate", "pool_distribution": "Key-mode pool", "sale": "Sales",
           "subscriber_pool_distribution": "Premium subscribers"}
# A sale's refunds and disputes are lines of the track they came from, signed (a refund is negative).
SALE_SOURCES = {"refund": "Sales refunded", "chargeback": "Sales disputed", "chargeback_won": "Disputes won",
                "subscription_refund": "Premium refunded"}  # a premium refund after the close, recouped
ADJUSTMENTS = {"refund": "Refund", "chargeback": "Chargeback", "payout_reversed": "Payout returned",
               "hold_released": "Released from hold"}


@dataclass
class TrackLine:
    track_id: int | None
    title: str
    release_title: str
    source: str
    amount_micros: int


@dataclass
class Statement:
    payee_id: int
    payee_name: str
    period: str
    currency: str
    opening_micros: int
    closing_micros: int
    earnings: list[TrackLine] = field(default_factory=list)
    adjustments: list[dict] = field(default_factory=list)
    payouts: list[dict] = field(default_factory=list)
    held_micros: int = 0
    batch_payout: dict | None = None
    exclusion: str | None = None
    is_closed: bool = False
    subscribers_reached: int = 0  # premium subscribers whose pool reached the payee this month
    held_cases: list = field(default_factory=list)  # rights.escrow.HeldLine: per takedown case, at the cutoff

    @property
    def earnings_micros(self) -> int:
        return sum(line.amount_micros for line in self.earnings)

    @property
    def adjustments_micros(self) -> int:
        return sum(a["amount_micros"] for a in self.adjustments)

    @property
    def payouts_micros(self) -> int:
        return sum(p["amount_micros"] for p in self.payouts)

    def by_source(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.earnings:
            out[line.source] = out.get(line.source, 0) + line.amount_micros
        return out

    @staticmethod
    def held_sources(line) -> list[tuple[str, int]]:
        """A held line's sources in the statement's words, each with its amount in micros."""
        return [(SOURCES.get(event, event or "other"), micros) for event, micros in sorted(line.by_source.items())]

    def money(self, micros: int) -> Money:
        return Money(micros, self.currency)

    @property
    def carried_micros(self) -> int:
        paid = self.batch_payout["amount_micros"] if self.batch_payout else 0
        return self.closing_micros - paid


def statement(session: Session, payee_id: int, period: str, currency: str) -> Statement:
    from catalog.models import Payee
    from ledger.accounts import payee_held, payee_payable

    start, cutoff = bounds(period)
    payee = session.get(Payee, payee_id)
    name = payee.display_name if payee else f"Payee {payee_id}"
    code = payee_payable(payee_id)
    opening = _balance_before(session, code, currency, start)
    closing = _balance_before(session, code, currency, cutoff)
    stmt = Statement(payee_id, name, period, currency, opening, closing,
                     held_micros=_balance_before(session, payee_held(payee_id), currency, cutoff),
                     is_closed=session.get(RoyaltyPeriod, period) is not None,
                     subscribers_reached=subscribers_reached(session, payee_id, period),
                     held_cases=held_lines(session, payee_id, currency=currency, at=cutoff))
    rows = session.execute(text("""
        SELECT e.metadata->>'event' AS event, p.ref, p.credit, sum(p.amount_micros)::bigint,
               min(e.description), min(e.id)
          FROM ledger_postings p
          JOIN ledger_accounts a ON a.id = p.account_id
          JOIN ledger_entries e ON e.id = p.entry_id
         WHERE a.code = :code AND a.currency = :currency AND e.effective_at >= :start AND e.effective_at < :cutoff
         GROUP BY 1, 2, 3
         ORDER BY min(e.id)
    """), {"code": code, "currency": currency, "start": start, "cutoff": cutoff}).all()
    track_ids = {int(ref[6:]) for _, ref, _, _, _, _ in rows if ref and ref.startswith("track:") and ref[6:].isdigit()}
    titles = _track_titles(session, track_ids)
    for event, ref, credit, amount, description, _ in rows:
        signed = int(amount) if credit else -int(amount)
        if (event in SOURCES and credit) or event in SALE_SOURCES:
            track_id = int(ref[6:]) if ref and ref.startswith("track:") and ref[6:].isdigit() else None
            title, release = titles.get(track_id, ("(no track)", ""))
            stmt.earnings.append(TrackLine(track_id, title, release, {**SOURCES, **SALE_SOURCES}[event], signed))
        elif event == "payout" and not credit:
            stmt.payouts.append({"description": description, "amount_micros": int(amount), "ref": ref})
        else:
            label = ADJUSTMENTS.get(event or "", (event or "adjustment").replace("_", " ").capitalize())
            stmt.adjustments.append({"label": label, "description": description, "amount_micros": signed,
                                     "ref": ref})
    stmt.earnings.sort(key=lambda line: (line.source, line.release_title, line.title))
    item = session.execute(select(PayoutItem, PayoutBatch).join(PayoutBatch)
                           .where(PayoutItem.payee_id == payee_id, PayoutBatch.period == period,
                                  PayoutBatch.currency == currency, PayoutBatch.status != "cancelled")).first()
    if item is not None:
        payout, batch = item
        stmt.batch_payout = {"item_id": payout.id, "batch_id": batch.id, "amount_micros": payout.amount_micros,
                             "status": payout.status, "reference": payout.reference, "rail": payout.rail,
                             "carried_micros": payout.carried_micros}
    else:
        exclusion = session.scalar(select(PayoutExclusion.reason).join(PayoutBatch,
                                   PayoutBatch.id == PayoutExclusion.batch_id)
                                   .where(PayoutExclusion.payee_id == payee_id, PayoutBatch.period == period,
                                          PayoutBatch.currency == currency, PayoutBatch.status != "cancelled"))
        stmt.exclusion = exclusion
    return stmt


def _balance_before(session: Session, code: str, currency: str, moment) -> int:
    value = session.execute(text("""
        SELECT coalesce(sum(CASE WHEN p.credit = a.debit_normal THEN -p.amount_micros ELSE p.amount_micros END), 0)
          FROM ledger_accounts a JOIN ledger_postings p ON p.account_id = a.id
          JOIN ledger_entries e ON e.id = p.entry_id AND e.effective_at < :moment
         WHERE a.code = :code AND a.currency = :currency
    """), {"code": code, "currency": currency, "moment": moment}).scalar()
    return int(value or 0)


def _track_titles(session: Session, track_ids) -> dict[int, tuple[str, str]]:
    if not track_ids:
        return {}
    rows = session.execute(text("SELECT t.id, t.title, r.title FROM tracks t JOIN releases r ON r.id = t.release_id "
                                "WHERE t.id = ANY(:ids)"), {"ids": sorted(track_ids)})
    return {row[0]: (row[1], row[2]) for row in rows}


def statement_csv(stmt: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "source", "release", "track", "description", "amount", "currency"])
    amount = lambda micros: Money(micros, stmt.currency).amount_str(full=True)  # noqa: E731
    writer.writerow(["opening balance", "", "", "", f"{stmt.period}", amount(stmt.opening_micros), stmt.currency])
    for line in stmt.earnings:
        writer.writerow(["earnings", line.source, _safe(line.release_title), _safe(line.title), "",
                         amount(line.amount_micros), stmt.currency])
    for adj in stmt.adjustments:
        writer.writerow(["adjustment", adj["label"], "", "", _safe(adj["description"] or ""),
                         amount(adj["amount_micros"]), stmt.currency])
    for payout in stmt.payouts:
        writer.writerow(["payout", "", "", "", _safe(payout["description"] or ""), amount(-payout["amount_micros"]),
                         stmt.currency])
    writer.writerow(["closing balance", "", "", "", "", amount(stmt.closing_micros), stmt.currency])
    for held in stmt.held_cases:  # not in the balance: held for a takedown case until it ends
        writer.writerow([f"held for takedown case {held.case_id}", "; ".join(label for label, _ in stmt.held_sources(held)),
                         _safe(held.release_title), _safe(held.track_title), held.state, amount(held.held_micros),
                         stmt.currency])
    if stmt.batch_payout:
        writer.writerow(["payout for this month", stmt.batch_payout["status"], "", "",
                         _safe(stmt.batch_payout["reference"]), amount(stmt.batch_payout["amount_micros"]),
                         stmt.currency])
        writer.writerow(["carried to next month", "", "", "", "", amount(stmt.carried_micros), stmt.currency])
    elif stmt.exclusion:
        writer.writerow(["not paid this month", "", "", "", _safe(stmt.exclusion), amount(0), stmt.currency])
    return out.getvalue()


def _safe(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def statement_periods(session: Session, payee_id: int) -> list[tuple[str, str]]:
    """(period, currency) pairs in which the payee's payable account moved, newest first."""
    from ledger.accounts import payee_payable

    rows = session.execute(text("""
        SELECT DISTINCT to_char(e.effective_at AT TIME ZONE 'UTC', 'YYYY-MM'), a.currency::text
          FROM ledger_accounts a JOIN ledger_postings p ON p.account_id = a.id
          JOIN ledger_entries e ON e.id = p.entry_id
         WHERE a.code = :code ORDER BY 1 DESC, 2
    """), {"code": payee_payable(payee_id)}).all()
    return [(row[0], row[1]) for row in rows]
