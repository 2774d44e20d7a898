"""Payout methods: add, verify, replace. Services take a session first and commit what they change."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import Clock
from core.errors import Conflict, NotFound
from payments.errors import InvalidPayoutMethod
from payments.models import PayoutMethod
from payments.sepa import check_account
from payments.stripe_client import StripeClient


def current_method(session: Session, payee_id: int) -> PayoutMethod | None:
    return session.scalar(select(PayoutMethod).where(PayoutMethod.payee_id == payee_id,
                                                     PayoutMethod.status != "disabled"))


def get_method(session: Session, method_id: int) -> PayoutMethod:
    method = session.get(PayoutMethod, method_id)
    if method is None:
        raise NotFound(f"There is no payout method {method_id}.", code="payout_method_not_found")
    return method


def _holder(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 140:
        raise InvalidPayoutMethod("Give the account holder's name (at most 140 characters).",
                                  code="holder_name_required", field="holder_name")
    return name


def _replace(session: Session, payee_id: int, method: PayoutMethod, clock: Clock, commit: bool) -> PayoutMethod:
    old = session.scalars(select(PayoutMethod).where(PayoutMethod.payee_id == payee_id,
                                                     PayoutMethod.status != "disabled").with_for_update()).all()
    for previous in old:
        previous.status = "disabled"
        previous.disabled_at = clock.now()
    session.flush()
    session.add(method)
    session.flush()
    if commit:
        session.commit()
    return method


def add_sepa_method(session: Session, payee_id: int, *, holder_name: str, iban: str, bic: str | None,
                    clock: Clock, commit: bool = True) -> PayoutMethod:
    """A SEPA account is verified when its IBAN passes the checksum and bank-registry checks (schwifty)."""
    account = check_account(iban, bic)
    method = PayoutMethod(payee_id=payee_id, kind="sepa", holder_name=_holder(holder_name), iban=account.iban,
                          bic=account.bic, status="verified", verified_at=clock.now())
    return _replace(session, payee_id, method, clock, commit)


def add_stripe_method(session: Session, payee_id: int, *, holder_name: str, email: str, country: str,
                      stripe: StripeClient, clock: Clock, commit: bool = True) -> PayoutMethod:
    """Create a Connect account for the payee; it is verified once Stripe reports payouts enabled."""
    country = (country or "").strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidPayoutMethod("Give the two-letter country of the Stripe account, like US or DE.",
                                  code="invalid_country", field="country")
    count = len(session.scalars(select(PayoutMethod.id).where(PayoutMethod.payee_id == payee_id)).all())
    account = stripe.create_connect_account(email=email, country=country,
                                            idempotency_key=f"connect-account:payee:{payee_id}:{count + 1}")
    method = PayoutMethod(payee_id=payee_id, kind="stripe_connect", holder_name=_holder(holder_name),
                          stripe_account_id=account.id, status="pending")
    _replace(session, payee_id, method, clock, commit=False)
    verify_method(session, method.id, stripe=stripe, clock=clock, commit=False)
    if commit:
        session.commit()
    return method


def add_manual_method(session: Session, payee_id: int, *, holder_name: str, instructions: str, clock: Clock,
                      commit: bool = True) -> PayoutMethod:
    """Paid by hand from the batch's CSV; a finance user verifies the instructions before it is used."""
    instructions = (instructions or "").strip()
    if not 3 <= len(instructions) <= 1000:
        raise InvalidPayoutMethod("Say how to pay you (bank details or a payment address), up to 1000 characters.",
                                  code="instructions_required", field="instructions")
    method = PayoutMethod(payee_id=payee_id, kind="manual", holder_name=_holder(holder_name),
                          instructions=instructions, status="pending")
    return _replace(session, payee_id, method, clock, commit)


def verify_method(session: Session, method_id: int, *, clock: Clock, stripe: StripeClient | None = None,
                  verifier_id: int | None = None, commit: bool = True) -> PayoutMethod:
    """Check the method again with its rail: Connect asks Stripe; manual needs a finance user's word."""
    method = get_method(session, method_id)
    if method.status == "disabled":
        raise Conflict("That payout method was replaced; verify the current one.", code="payout_method_disabled")
    if method.kind == "stripe_connect":
        if stripe is None:
            raise InvalidPayoutMethod("Stripe is needed to verify a Connect account.", code="stripe_required")
        account = stripe.retrieve_connect_account(method.stripe_account_id)
        method.status = "verified" if account.payouts_enabled else "pending"
    elif method.kind == "sepa":
        check_account(method.iban or "", method.bic)
        method.status = "verified"
    else:
        if verifier_id is None:
            raise InvalidPayoutMethod("A finance user must confirm a manual payout method.",
                                      code="finance_verification_required", status=403)
        method.status = "verified"
        method.verified_by = verifier_id
    method.verified_at = clock.now() if method.status == "verified" else None
    session.flush()
    if commit:
        session.commit()
    return method


def verified_methods(session: Session, payee_ids) -> dict[int, PayoutMethod]:
    rows = session.scalars(select(PayoutMethod).where(PayoutMethod.payee_id.in_(list(payee_ids)),
                                                      PayoutMethod.status == "verified"))
    return {m.payee_id: m for m in rows}
