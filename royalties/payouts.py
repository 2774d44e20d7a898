"""Payout batches: draft (set-based), approve (four eyes), execute and resume (item by item, crash-safe).

State machine. Batch: draft -> approved (by a finance user who is not the drafter) -> executing -> done;
a draft or an approved batch may be cancelled. Item: pending -> in_transit -> settled | reversed.

Crash safety. Each step commits on its own: (1) Dr payable / Cr in-transit and the item's move to
in_transit, in one transaction; (2) the rail call with the item id as idempotency key; (3) the settlement
(Dr in-transit / Cr assets) or the reversal (Dr in-transit / Cr payable) and the item's final status, in one
transaction. A run killed anywhere resumes at the first unfinished step: a repeated rail call returns the
first call's result, and ledger entries carry idempotency keys, so nobody is paid twice and nobody skipped.

Transaction. `execute_batch` is a crash-surviving process (DESIGN.md "Who owns the transaction"): it commits
per step as above, and is resumable. Drafting, approving and cancelling do not commit: the caller does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.clock import Clock
from core.errors import Forbidden, NotFound
from core.money import Money, minor_unit_micros
from core.users import User
from payments.errors import RailDeclined, RailUnavailable
from payments.models import PayoutMethod
from royalties.errors import BatchStateError, FourEyes, PeriodNotClosed
from royalties.models import PayoutBatch, PayoutExclusion, PayoutItem, RoyaltyPeriod
from royalties.periods import bounds
from royalties.rails import Rail, end_to_end_id

REFERENCE_MAX = 140  # what a SEPA remittance line holds


def get_batch(session: Session, batch_id: int, *, lock: bool = False) -> PayoutBatch:
    query = select(PayoutBatch).where(PayoutBatch.id == batch_id)
    if lock:
        query = query.with_for_update()
    batch = session.scalar(query)
    if batch is None:
        raise NotFound(f"There is no payout batch {batch_id}.", code="batch_not_found")
    return batch


def _finance(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_active or not user.has_role("finance"):
        raise Forbidden("Only a finance user can do that.", code="finance_required")
    return user


# --- draft ----------------------------------------------------------------------------------------------
def draft_batch(session: Session, period: str, *, currency: str, drafted_by: int, clock: Clock,
                threshold_micros: int) -> PayoutBatch:
    """Draft the batch for a closed month; drafting again returns the open draft of that month."""
    start, cutoff = bounds(period)
    currency = Money(0, currency).currency
    _finance(session, drafted_by)
    if session.get(RoyaltyPeriod, period) is None:
        raise PeriodNotClosed(f"{period} is not closed yet; close the month before drafting its payouts.")
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('royalties.draft'))"))
    existing = session.scalar(select(PayoutBatch).where(PayoutBatch.period == period, PayoutBatch.currency == currency,
                                                        PayoutBatch.status != "cancelled"))
    if existing is not None:
        if existing.status == "draft":
            return existing
        raise BatchStateError(f"{period} already has batch {existing.id} ({existing.status}) in {currency}.",
                              batch_id=existing.id)
    unfinished = session.scalar(select(PayoutBatch).where(PayoutBatch.currency == currency,
                                                          PayoutBatch.status.in_(("draft", "approved", "executing"))))
    if unfinished is not None:
        raise BatchStateError(f"Batch {unfinished.id} for {unfinished.period} is still {unfinished.status}; "
                              "finish or cancel it before drafting another.", batch_id=unfinished.id)
    batch = PayoutBatch(period=period, currency=currency, status="draft", drafted_by=drafted_by,
                        drafted_at=clock.now(), threshold_micros=threshold_micros, total_micros=0, item_count=0)
    session.add(batch)
    session.flush()
    _fill(session, batch, start, cutoff)
    session.flush()
    return batch


def _fill(session: Session, batch: PayoutBatch, start, cutoff) -> None:
    unit = minor_unit_micros(batch.currency)
    threshold = Money(batch.threshold_micros, batch.currency).amount_str()
    params = {"batch": batch.id, "currency": batch.currency, "cutoff": cutoff, "start": start, "unit": unit,
              "threshold": batch.threshold_micros, "period": batch.period,
              "below": f"below the {threshold} {batch.currency} threshold: carried to next month",
              "payable_re": r"^liabilities:payee:[0-9]+:payable$"}
    session.execute(text("DROP TABLE IF EXISTS tmp_payables, tmp_candidates"))
    session.execute(text("SET LOCAL work_mem = '128MB'"))
    # Each payee's payable at the cut-off and now; what may be paid is the lesser (a later refund or an earlier
    # batch paid after the cut-off lowers it; later earnings wait for their own month).
    session.execute(text("""
        CREATE TEMP TABLE tmp_payables ON COMMIT DROP AS
        SELECT split_part(a.code, ':', 3)::int AS payee_id, a.id AS account_id,
               a.balance_micros - coalesce(later.net, 0) AS at_cutoff, a.balance_micros AS now
          FROM ledger_accounts a
          LEFT JOIN (
                SELECT p.account_id, sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END) AS net
                  FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
                 WHERE e.effective_at >= :cutoff
                 GROUP BY p.account_id) later ON later.account_id = a.id
         WHERE a.code ~ :payable_re AND a.currency = :currency
    """), params)
    session.execute(text("ANALYZE tmp_payables"))
    session.execute(text("""
        CREATE TEMP TABLE tmp_candidates ON COMMIT DROP AS
        SELECT t.payee_id, t.at_cutoff, least(t.at_cutoff, t.now) AS available,
               m.id AS method_id, m.kind, m.status AS method_status, h.reason AS hold_reason,
               CASE
                 WHEN least(t.at_cutoff, t.now) < 0 THEN 'negative'
                 WHEN h.id IS NOT NULL THEN 'on_hold'
                 WHEN least(t.at_cutoff, t.now) < :threshold THEN 'below_threshold'
                 WHEN m.id IS NULL THEN 'no_payout_method'
                 WHEN m.status <> 'verified' THEN 'method_unverified'
                 WHEN m.kind = 'sepa' AND :currency <> 'EUR' THEN 'rail_currency'
                 WHEN least(t.at_cutoff, t.now) - mod(least(t.at_cutoff, t.now), :unit) <= 0 THEN 'below_threshold'
                 ELSE NULL
               END AS reason_code
          FROM tmp_payables t
          -- the verified method if there is one: a replacement waiting for confirmation does not take over
          LEFT JOIN LATERAL (SELECT id, kind, status FROM payout_methods pm
                              WHERE pm.payee_id = t.payee_id AND pm.status <> 'disabled'
                              ORDER BY pm.status = 'verified' DESC, pm.id LIMIT 1) m ON true
          LEFT JOIN royalty_payee_holds h ON h.payee_id = t.payee_id AND h.released_at IS NULL
         WHERE t.at_cutoff <> 0 OR t.now <> 0
    """), params)
    session.execute(text("ANALYZE tmp_candidates"))
    session.execute(text("""
        INSERT INTO payout_exclusions (batch_id, payee_id, balance_micros, reason_code, reason)
        SELECT :batch, payee_id, available, reason_code,
               CASE reason_code
                 WHEN 'negative' THEN 'negative balance: recouped from later earnings, nothing paid'
                 WHEN 'on_hold' THEN left('on hold: ' || coalesce(hold_reason, 'ask finance'), 300)
                 WHEN 'below_threshold' THEN :below
                 WHEN 'no_payout_method' THEN 'no payout method: add one on your payouts page'
                 WHEN 'method_unverified' THEN 'payout method not verified yet: finish its verification'
                 WHEN 'rail_currency' THEN 'SEPA pays euros only: choose Stripe Connect or a manual payout'
               END
          FROM tmp_candidates WHERE reason_code IS NOT NULL AND available <> 0
    """), params)
    # The reference names the month and the releases that earned in it (truncated to fit a bank line).
    session.execute(text("""
        INSERT INTO payout_items (batch_id, payee_id, method_id, rail, currency, balance_micros, amount_micros,
                                  carried_micros, reference, status, attempts)
        WITH paid AS (
            SELECT c.payee_id, c.method_id, c.kind, c.at_cutoff,
                   c.available - mod(c.available, :unit) AS amount
              FROM tmp_candidates c WHERE c.reason_code IS NULL
        ), releases AS (
            SELECT x.payee_id, string_agg(x.title, ', ' ORDER BY x.title) AS titles
              FROM (SELECT DISTINCT t.payee_id, r.title
                      FROM tmp_payables t
                      JOIN ledger_postings p ON p.account_id = t.account_id AND p.credit AND p.ref LIKE 'track:%'
                      JOIN ledger_entries e ON e.id = p.entry_id AND e.effective_at >= :start
                                           AND e.effective_at < :cutoff
                      JOIN tracks tr ON tr.id = substr(p.ref, 7)::int
                      JOIN releases r ON r.id = tr.release_id
                     WHERE t.payee_id IN (SELECT payee_id FROM paid)) x
             GROUP BY x.payee_id
        )
        SELECT :batch, paid.payee_id, paid.method_id, paid.kind, :currency, paid.at_cutoff, paid.amount,
               paid.at_cutoff - paid.amount,
               CASE WHEN rel.titles IS NULL THEN 'Ninety royalties ' || :period
                    WHEN length('Ninety royalties ' || :period || ': ' || rel.titles) <= 140
                         THEN 'Ninety royalties ' || :period || ': ' || rel.titles
                    ELSE left('Ninety royalties ' || :period || ': ' || rel.titles, 139) || '…' END,
               'pending', 0
          FROM paid LEFT JOIN releases rel ON rel.payee_id = paid.payee_id
         ORDER BY paid.payee_id
    """), params)
    total, count = session.execute(select(func.coalesce(func.sum(PayoutItem.amount_micros), 0), func.count())
                                   .where(PayoutItem.batch_id == batch.id)).one()
    batch.total_micros = int(total)
    batch.item_count = int(count)
    session.flush()


# --- approve, cancel -------------------------------------------------------------------------------------
def approve_batch(session: Session, batch_id: int, *, approved_by: int, clock: Clock) -> PayoutBatch:
    batch = get_batch(session, batch_id, lock=True)
    _finance(session, approved_by)
    if batch.status != "draft":
        raise BatchStateError(f"Batch {batch.id} is {batch.status}; only a draft can be approved.")
    if batch.drafted_by == approved_by:
        raise FourEyes("You drafted this batch; a second finance user must approve it (four eyes).")
    batch.status = "approved"
    batch.approved_by = approved_by
    batch.approved_at = clock.now()
    session.flush()
    return batch


def cancel_batch(session: Session, batch_id: int, *, cancelled_by: int, clock: Clock) -> PayoutBatch:
    batch = get_batch(session, batch_id, lock=True)
    _finance(session, cancelled_by)
    if batch.status not in ("draft", "approved"):
        raise BatchStateError(f"Batch {batch.id} is {batch.status}; only a draft or approved batch can be cancelled.")
    batch.status = "cancelled"
    batch.cancelled_at = clock.now()
    session.flush()
    return batch


# --- execute ---------------------------------------------------------------------------------------------
@dataclass
class Progress:
    batch_id: int
    status: str
    counts: dict
    total_micros: int
    settled_micros: int
    currency: str
    stopped_reason: str | None = None

    @property
    def done(self) -> int:
        return self.counts.get("settled", 0) + self.counts.get("reversed", 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict:
        return {"batch_id": self.batch_id, "status": self.status, "counts": self.counts, "done": self.done,
                "total": self.total, "total_micros": self.total_micros, "settled_micros": self.settled_micros,
                "currency": self.currency, "stopped_reason": self.stopped_reason}


def progress(session: Session, batch_id: int, stopped_reason: str | None = None) -> Progress:
    batch = get_batch(session, batch_id)
    counts = {status: 0 for status in ("pending", "in_transit", "settled", "reversed")}
    settled = 0
    for status, count, amount in session.execute(
            select(PayoutItem.status, func.count(), func.coalesce(func.sum(PayoutItem.amount_micros), 0))
            .where(PayoutItem.batch_id == batch_id).group_by(PayoutItem.status)):
        counts[status] = int(count)
        if status == "settled":
            settled = int(amount)
    return Progress(batch.id, batch.status, counts, batch.total_micros, settled, batch.currency, stopped_reason)


Checkpoint = Callable[[str, PayoutItem], None]


def execute_batch(session: Session, batch_id: int, *, rails: dict[str, Rail], clock: Clock,
                  checkpoint: Checkpoint | None = None, limit: int | None = None) -> Progress:
    """Run (or resume) an approved batch; returns its progress. `checkpoint(step, item)` is called after each
    committed step (for progress reporting, and for tests that kill the run between steps)."""
    batch = get_batch(session, batch_id, lock=True)
    if batch.status == "approved":
        batch.status = "executing"
        batch.started_at = clock.now()
    elif batch.status == "done":
        session.rollback()
        return progress(session, batch_id)
    elif batch.status != "executing":
        raise BatchStateError(f"Batch {batch.id} is {batch.status}; it must be approved by a second finance user "
                              "before it can be executed.")
    session.commit()
    checkpoint = checkpoint or (lambda step, item: None)
    handled = 0
    item_ids = list(session.scalars(select(PayoutItem.id).where(
        PayoutItem.batch_id == batch_id, PayoutItem.status.in_(("pending", "in_transit"))).order_by(PayoutItem.id)))
    for item_id in item_ids:
        if limit is not None and handled >= limit:
            return progress(session, batch_id)
        item = session.scalar(select(PayoutItem).where(PayoutItem.id == item_id).with_for_update())
        if item.status == "pending":
            _move_to_transit(session, item, clock)
            checkpoint("in_transit", item)
        if item.status == "in_transit":
            method = session.get(PayoutMethod, item.method_id)
            rail = rails.get(item.rail)
            try:
                if rail is None:
                    raise RailUnavailable(f"The {item.rail} rail is not configured here.", code="rail_not_configured")
                item.attempts += 1
                sent = rail.send(item, method)
            except RailDeclined as exc:
                checkpoint("declined", item)
                _reverse(session, item, exc, clock)
                checkpoint("reversed", item)
            except RailUnavailable as exc:
                item.failure_code = exc.code
                item.failure_reason = exc.message
                item.updated_at = clock.now()
                session.commit()
                return progress(session, batch_id, stopped_reason=exc.message)
            else:
                checkpoint("sent", item)
                _settle(session, item, sent.rail_ref, sent.settles_to, clock)
                checkpoint("settled", item)
        handled += 1
    batch = get_batch(session, batch_id, lock=True)
    open_items = session.scalar(select(func.count()).where(PayoutItem.batch_id == batch_id,
                                                           PayoutItem.status.in_(("pending", "in_transit"))))
    if not open_items and batch.status == "executing":
        batch.status = "done"
        batch.finished_at = clock.now()
    session.commit()
    return progress(session, batch_id)


def _post(session: Session, key: str, description: str, postings: list, metadata: dict, clock: Clock) -> int:
    from ledger import services as ledger

    entry = ledger.Entry(idempotency_key=key, effective_at=clock.now(), description=description,
                         postings=postings, metadata=metadata)
    return ledger.post(session, entry)


def _move_to_transit(session: Session, item: PayoutItem, clock: Clock) -> None:
    from ledger.accounts import PAYOUTS_IN_TRANSIT, payee_payable
    from ledger.services import Posting

    ref = f"payout:{item.id}"
    item.payout_entry_id = _post(session, f"payout:{item.id}", item.reference, [
        Posting(payee_payable(item.payee_id), "debit", item.amount_micros, item.currency, ref=ref),
        Posting(PAYOUTS_IN_TRANSIT, "credit", item.amount_micros, item.currency, ref=ref),
    ], {"event": "payout", "payout_item": item.id, "batch": item.batch_id, "rail": item.rail}, clock)
    item.status = "in_transit"
    item.updated_at = clock.now()
    session.commit()


def _settle(session: Session, item: PayoutItem, rail_ref: str, asset: str, clock: Clock) -> None:
    from ledger.accounts import PAYOUTS_IN_TRANSIT
    from ledger.services import Posting

    ref = f"payout:{item.id}"
    item.final_entry_id = _post(session, f"payout-settled:{item.id}", f"Settled on {item.rail}: {rail_ref}", [
        Posting(PAYOUTS_IN_TRANSIT, "debit", item.amount_micros, item.currency, ref=ref),
        Posting(asset, "credit", item.amount_micros, item.currency, ref=ref),
    ], {"event": "payout_settled", "payout_item": item.id, "rail_ref": rail_ref}, clock)
    item.rail_ref = rail_ref[:64]
    item.status = "settled"
    item.failure_code = None
    item.failure_reason = None
    item.updated_at = clock.now()
    session.commit()


def _reverse(session: Session, item: PayoutItem, exc: Exception, clock: Clock) -> None:
    from ledger.accounts import PAYOUTS_IN_TRANSIT, payee_payable
    from ledger.services import Posting

    ref = f"payout:{item.id}"
    item.final_entry_id = _post(session, f"payout-reversed:{item.id}", f"Payout reversed: {exc}"[:500], [
        Posting(PAYOUTS_IN_TRANSIT, "debit", item.amount_micros, item.currency, ref=ref),
        Posting(payee_payable(item.payee_id), "credit", item.amount_micros, item.currency, ref=ref),
    ], {"event": "payout_reversed", "payout_item": item.id, "reason": str(exc)[:300]}, clock)
    item.status = "reversed"
    item.failure_code = getattr(exc, "code", "declined")
    item.failure_reason = str(exc)[:1000]
    item.updated_at = clock.now()
    session.commit()


# --- files ----------------------------------------------------------------------------------------------
def sepa_file(session: Session, batch_id: int, *, debtor_name: str, debtor_iban: str, debtor_bic: str,
              execution_date: date) -> bytes:
    """The batch's pain.001.001.03 file: every SEPA item that was sent (in transit or settled)."""
    from payments.sepa import SepaPayment, build_pain001, check_account

    batch = get_batch(session, batch_id)
    if batch.status not in ("executing", "done"):
        raise BatchStateError(f"Batch {batch.id} is {batch.status}; its SEPA file exists once it is executed.")
    rows = session.execute(select(PayoutItem, PayoutMethod).join(PayoutMethod, PayoutMethod.id == PayoutItem.method_id)
                           .where(PayoutItem.batch_id == batch_id, PayoutItem.rail == "sepa",
                                  PayoutItem.status.in_(("in_transit", "settled"))).order_by(PayoutItem.id)).all()
    if not rows:
        raise BatchStateError(f"Batch {batch.id} has no SEPA payouts.", code="no_sepa_items")
    payments = [SepaPayment(end_to_end_id(item), method.holder_name, method.iban, method.bic,
                            item.amount_micros // minor_unit_micros(item.currency), item.reference)
                for item, method in rows]
    return build_pain001(message_id=f"NINETY-B{batch.id}-{batch.period}", debtor_name=debtor_name,
                         debtor=check_account(debtor_iban, debtor_bic), payments=payments,
                         execution_date=execution_date, currency=batch.currency)


def manual_csv(session: Session, batch_id: int) -> str:
    """The manual items of a batch as CSV, for paying by hand."""
    batch = get_batch(session, batch_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["item_id", "payee_id", "holder_name", "instructions", "amount", "currency", "reference",
                     "status"])
    rows = session.execute(select(PayoutItem, PayoutMethod).join(PayoutMethod, PayoutMethod.id == PayoutItem.method_id)
                           .where(PayoutItem.batch_id == batch.id, PayoutItem.rail == "manual")
                           .order_by(PayoutItem.id)).all()
    for item, method in rows:
        writer.writerow([item.id, item.payee_id, _csv_safe(method.holder_name), _csv_safe(method.instructions or ""),
                         Money(item.amount_micros, item.currency).amount_str(), item.currency,
                         _csv_safe(item.reference), item.status])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """Keep spreadsheet formulas out of exported cells."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def items(session: Session, batch_id: int, *, status: str | None = None, limit: int = 500, offset: int = 0):
    query = select(PayoutItem).where(PayoutItem.batch_id == batch_id)
    if status:
        query = query.where(PayoutItem.status == status)
    return list(session.scalars(query.order_by(PayoutItem.id).limit(limit).offset(offset)))


def exclusions(session: Session, batch_id: int, *, limit: int = 500, offset: int = 0):
    return list(session.scalars(select(PayoutExclusion).where(PayoutExclusion.batch_id == batch_id)
                                .order_by(PayoutExclusion.payee_id).limit(limit).offset(offset)))


def batches(session: Session, *, limit: int = 50) -> list[PayoutBatch]:
    return list(session.scalars(select(PayoutBatch).order_by(PayoutBatch.id.desc()).limit(limit)))
