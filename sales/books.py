"""The money policy of a sale, its refunds and its disputes: which journal entries they post.

A sale is one entry: Dr `assets:stripe` the net (gross less the processing fee), Dr
`expenses:processing-fees` the fee; Cr each payee 90% of the net, rounded up (`share_ceil`), split over the
order's tracks in equal parts and then by each track's split sheet in force at the sale (`allocate`, largest
remainder), to where the track's takedown case routes it (`rights.escrow.routes_for`: held for the case,
or the claimant once upheld); Cr `income:sales` the rest of the gross (so the
platform's 10% of the net is income:sales less the fee expense). Payee and fee postings carry
`ref=track:{id}`, so per-track figures come straight from the books.

A refund or a dispute reverses the sale proportionally: with `reversed` the part of the gross refunded or
disputed so far, the payees have given back `floor(payees × reversed / gross)` in all (so they keep at least
90% of what is left of the net, and a sale reversed in full takes back exactly what it paid), this entry's
part spread over what each payee posting still holds by the same largest-remainder split. Cr
`assets:stripe` what left Stripe; Dr `income:sales` the rest: the platform bears the fee Stripe keeps on a
refunded sale, and a dispute's fee (Dr `expenses:processing-fees`). A won dispute posts the mirror of its
reversal (and the fee, if Stripe gave it back). Payee balances may go negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.money import allocate, share_ceil
from ledger.accounts import INCOME_SALES, PROCESSING_FEES, STRIPE, payee_held, payee_payable
from ledger.values import CREDIT, DEBIT, Entry, Posting


@dataclass(frozen=True)
class TrackShare:
    """One track of an order at the moment of the sale: its split sheet and whether its earnings are held."""

    track_id: int
    sheet: list[tuple[int, int]]  # [(payee_id, share_bp)]
    held: bool = False
    route: object | None = None  # rights.escrow.Route: the takedown case's account for each payee's share


def _signed(account: str, debit_micros: int, currency: str, ref: str | None = None) -> list[Posting]:
    """A posting on the debit side for a positive amount, the credit side for a negative one, none for 0."""
    if debit_micros > 0:
        return [Posting(account, DEBIT, debit_micros, currency, ref)]
    if debit_micros < 0:
        return [Posting(account, CREDIT, -debit_micros, currency, ref)]
    return []


def payee_side(net_micros: int) -> int:
    """The payees' 90% of a sale's net, rounded up (0 when a sale nets nothing)."""
    return share_ceil(net_micros, 9, 10) if net_micros > 0 else 0


def sale_entry(*, key: str, order_id: int, gross_micros: int, fee_micros: int, currency: str,
               tracks: list[TrackShare], at: datetime, description: str, metadata: dict | None = None) -> Entry:
    if not tracks:
        raise ValueError("a sale needs at least one track")
    net = gross_micros - fee_micros
    artists = payee_side(net)
    ref = f"order:{order_id}"
    postings: list[Posting] = _signed(STRIPE, net, currency, ref)
    for track, fee_part in zip(tracks, allocate(fee_micros, [1] * len(tracks)), strict=True):
        postings += _signed(PROCESSING_FEES, fee_part, currency, f"track:{track.track_id}")
    for track, part in zip(tracks, allocate(artists, [1] * len(tracks)), strict=True):
        account = track.route.account if track.route is not None else payee_held if track.held else payee_payable
        weights = [bp for _, bp in track.sheet]
        for (payee_id, _), amount in zip(track.sheet, allocate(part, weights), strict=True):
            if amount:
                postings.append(Posting(account(payee_id), CREDIT, amount, currency, f"track:{track.track_id}"))
    postings += _signed(INCOME_SALES, -(gross_micros - artists), currency, ref)  # the fee is an expense beside it
    return Entry(key, at, description, postings,
                 {"event": "sale", "order_id": order_id, "gross_micros": gross_micros, "fee_micros": fee_micros,
                  **(metadata or {})})


def is_payee_account(code: str) -> bool:
    return code.startswith("liabilities:payee:")


def payee_holdings(entries) -> dict[tuple[str, str | None], int]:
    """What each payee posting of a sale still holds after the given entries of that order (sale first)."""
    held: dict[tuple[str, str | None], int] = {}
    for entry in entries:
        for p in entry.postings:
            if is_payee_account(p.account):
                signed = p.amount_micros if p.side == CREDIT else -p.amount_micros
                held[(p.account, p.ref)] = held.get((p.account, p.ref), 0) + signed
    return held


def reversal_entry(*, key: str, event: str, order_id: int, gross_micros: int, currency: str,
                   payees_total_micros: int, holdings: dict[tuple[str, str | None], int],
                   reversed_before_micros: int, amount_micros: int, fee_micros: int = 0, at: datetime,
                   description: str, metadata: dict | None = None) -> Entry:
    """A refund (`event="refund"`) or a dispute (`"chargeback"`) of `amount_micros` of the gross.

    `reversed_before_micros` is the part of the gross already refunded or disputed; `holdings` what each payee
    posting of the sale still holds (`payee_holdings`)."""
    if amount_micros <= 0:
        raise ValueError("a reversal is of a positive amount")
    still_held = sum(holdings.values())
    given_back = payees_total_micros - still_held
    target = payees_total_micros * (reversed_before_micros + amount_micros) // gross_micros
    part = max(0, min(target - given_back, still_held))
    ref = f"order:{order_id}"
    postings: list[Posting] = []
    keys = sorted(k for k, v in holdings.items() if v > 0)
    if part and keys:
        for (account, track_ref), amount in zip(keys, allocate(part, [holdings[k] for k in keys]), strict=True):
            if amount:
                postings.append(Posting(account, DEBIT, amount, currency, track_ref))
    postings += _signed(PROCESSING_FEES, fee_micros, currency, ref)
    postings += _signed(STRIPE, -(amount_micros + fee_micros), currency, ref)
    postings += _signed(INCOME_SALES, amount_micros - part, currency, ref)
    return Entry(key, at, description, postings,
                 {"event": event, "order_id": order_id, "amount_micros": amount_micros, "fee_micros": fee_micros,
                  "payees_micros": part, **(metadata or {})})


def restoration_entry(*, key: str, original, fee_returned_micros: int, at: datetime, description: str,
                      metadata: dict | None = None) -> Entry:
    """A won dispute: the mirror of its reversal's payee, income and stripe postings, and the fee if returned."""
    currency = original.postings[0].currency
    fee_posted = fee_posted_total(original)
    postings: list[Posting] = []
    for p in original.postings:
        if p.account == PROCESSING_FEES:
            continue
        amount = p.amount_micros - (fee_posted if p.account == STRIPE else 0)
        if amount > 0:
            postings.append(Posting(p.account, CREDIT if p.side == DEBIT else DEBIT, amount, currency, p.ref))
    fee_back = min(max(fee_returned_micros, 0), fee_posted)
    order_ref = (original.metadata or {}).get("order_id")
    ref = f"order:{order_ref}" if order_ref is not None else None
    postings += _signed(STRIPE, fee_back, currency, ref)
    postings += _signed(PROCESSING_FEES, -fee_back, currency, ref)
    return Entry(key, at, description, postings,
                 {"event": "chargeback_won", "reverses_entry": original.id, "fee_returned_micros": fee_back,
                  **(metadata or {})})


def fee_posted_total(entry) -> int:
    return sum(p.amount_micros if p.side == DEBIT else -p.amount_micros
               for p in entry.postings if p.account == PROCESSING_FEES)
