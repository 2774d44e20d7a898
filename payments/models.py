"""Payout methods: how a payee is paid (Stripe Connect, a SEPA account, or manually from a CSV).

A payee has at most one verified method (the one payouts use) and at most one pending method: a replacement
waiting for its email confirmation and rail check. Only when the replacement is verified is the old one
disabled, so saving a method never stops (or redirects) payouts by itself.
`payee_id` refers to catalog's payees by value: payments depends on core only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

METHOD_KINDS = ("stripe_connect", "sepa", "manual")
METHOD_STATUSES = ("pending", "verified", "disabled")


class PayoutMethod(Base):
    __tablename__ = "payout_methods"
    __table_args__ = (
        CheckConstraint("kind IN ('stripe_connect','sepa','manual')", name="kind"),
        CheckConstraint("status IN ('pending','verified','disabled')", name="status"),
        CheckConstraint("kind <> 'sepa' OR iban IS NOT NULL", name="sepa_has_iban"),
        CheckConstraint("kind <> 'stripe_connect' OR stripe_account_id IS NOT NULL", name="connect_has_account"),
        Index("uq_payout_methods_verified", "payee_id", unique=True, postgresql_where=text("status = 'verified'")),
        Index("uq_payout_methods_pending", "payee_id", unique=True, postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payee_id: Mapped[int] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    holder_name: Mapped[str] = mapped_column(String(140))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    stripe_account_id: Mapped[str | None] = mapped_column(String(64))
    instructions: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    confirmed_at: Mapped[datetime | None]  # the payee followed the signed link emailed to their account
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[int | None]
    disabled_at: Mapped[datetime | None]

    @property
    def is_verified(self) -> bool:
        return self.status == "verified"

    @property
    def rail(self) -> str:
        return self.kind

    def describe(self) -> str:
        if self.kind == "sepa":
            return f"SEPA transfer to {self.holder_name}, IBAN …{(self.iban or '')[-4:]}"
        if self.kind == "stripe_connect":
            return f"Stripe Connect account {self.stripe_account_id}"
        return f"Manual payment to {self.holder_name}"

    @property
    def currencies(self) -> tuple[str, ...] | None:
        """The currencies this rail can pay, or None for any."""
        return ("EUR",) if self.kind == "sepa" else None
