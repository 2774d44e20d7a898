"""Payout rails: how one payout item leaves the platform. Each rail is idempotent on the item id.

- Stripe Connect: a transfer to the payee's connected account (settles against assets:stripe).
- SEPA: the item is a credit transfer in the batch's pain.001 file (settles against assets:bank).
- Manual: the item is a line in the batch's CSV, paid by hand (settles against assets:bank).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.money import minor_unit_micros
from payments.models import PayoutMethod
from payments.stripe_client import StripeClient
from royalties.models import PayoutItem


@dataclass(frozen=True)
class Sent:
    rail_ref: str
    settles_to: str  # the asset account the money left


class Rail(Protocol):
    def send(self, item: PayoutItem, method: PayoutMethod) -> Sent: ...


class ConnectRail:
    def __init__(self, stripe: StripeClient) -> None:
        self.stripe = stripe

    def send(self, item: PayoutItem, method: PayoutMethod) -> Sent:
        from ledger.accounts import STRIPE

        transfer = self.stripe.create_transfer(
            amount_minor=item.amount_micros // minor_unit_micros(item.currency), currency=item.currency,
            destination=method.stripe_account_id, idempotency_key=item.idempotency_key,
            description=item.reference[:350], transfer_group=f"ninety-batch-{item.batch_id}",
            metadata={"payout_item": str(item.id), "payout_batch": str(item.batch_id), "payee": str(item.payee_id)})
        return Sent(rail_ref=transfer.id, settles_to=STRIPE)


class FileRail:
    """SEPA and manual items: the batch's file is the instruction to the bank; the item id is its end-to-end id."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def send(self, item: PayoutItem, method: PayoutMethod) -> Sent:
        from ledger.accounts import BANK

        prefix = "sepa" if self.kind == "sepa" else "manual"
        return Sent(rail_ref=f"{prefix}:{end_to_end_id(item)}", settles_to=BANK)


def end_to_end_id(item: PayoutItem) -> str:
    return f"NINETY-I{item.id}"


def default_rails(stripe: StripeClient | None) -> dict[str, Rail]:
    rails: dict[str, Rail] = {"sepa": FileRail("sepa"), "manual": FileRail("manual")}
    if stripe is not None:
        rails["stripe_connect"] = ConnectRail(stripe)
    return rails
