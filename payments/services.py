"""Payout methods: add, confirm, verify, replace.

Saving a method never verifies it, nor touches the method payouts use: the new one waits (pending) until
the payee confirms it through a signed, expiring link emailed to their account (confirm_method), and its
rail agrees (SEPA: the IBAN checks; Connect: Stripe reports payouts enabled; manual: a finance user). Only
then is it verified and the old one disabled. Emailing the link is the caller's part (royalties).
These functions flush and never commit: the caller owns the transaction (DESIGN.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import Clock
from core.errors import Conflict, NotFound
from payments.errors import InvalidPayoutMethod
from payments.models import PayoutMethod
from payments.sepa import check_account
from payments.stripe_client import StripeClient


def current_method(session: Session, payee_id: int) -> PayoutMethod | None:
    """The method payouts use (verified), or else the one waiting for verification."""
    return active_method(session, payee_id) or pending_method(session, payee_id)


def active_method(session: Session, payee_id: int) -> PayoutMethod | None:
    return session.scalar(select(PayoutMethod).where(PayoutMethod.payee_id == payee_id,
                                                     PayoutMethod.status == "verified"))


def pending_method(session: Session, payee_id: int) -> PayoutMethod | None:
    return session.scalar(select(PayoutMethod).where(PayoutMethod.payee_id == payee_id,
                                                     PayoutMethod.status == "pending"))


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


def _propose(session: Session, payee_id: int, method: PayoutMethod, clock: Clock) -> PayoutMethod:
    """Add a replacement beside the verified method; an earlier replacement still waiting is withdrawn."""
    current = session.scalars(select(PayoutMethod).where(PayoutMethod.payee_id == payee_id,
                                                         PayoutMethod.status != "disabled").with_for_update()).all()
    for previous in current:
        if previous.status == "pending":
            previous.status = "disabled"
            previous.disabled_at = clock.now()
    session.flush()
    method.status = "pending"
    method.confirmed_at = None
    session.add(method)
    session.flush()
    return method


def _activate(session: Session, method: PayoutMethod, clock: Clock) -> PayoutMethod | None:
    """Make `method` the one payouts use; the method it replaces is disabled and returned."""
    previous = session.scalar(select(PayoutMethod).where(PayoutMethod.payee_id == method.payee_id,
                                                         PayoutMethod.status == "verified",
                                                         PayoutMethod.id != method.id).with_for_update())
    if previous is not None:
        previous.status = "disabled"
        previous.disabled_at = clock.now()
        session.flush()
    method.status = "verified"
    method.verified_at = clock.now()
    session.flush()
    return previous


def add_sepa_method(session: Session, payee_id: int, *, holder_name: str, iban: str, bic: str | None,
                    clock: Clock) -> PayoutMethod:
    """A SEPA account must pass the IBAN checksum and bank-registry checks (schwifty) to be saved at all;
    it is verified when the payee confirms it through the emailed link (confirm_method)."""
    account = check_account(iban, bic)
    method = PayoutMethod(payee_id=payee_id, kind="sepa", holder_name=_holder(holder_name), iban=account.iban,
                          bic=account.bic)
    return _propose(session, payee_id, method, clock)


def add_stripe_method(session: Session, payee_id: int, *, holder_name: str, email: str, country: str,
                      stripe: StripeClient, clock: Clock) -> PayoutMethod:
    """Create a Connect account for the payee; verified once the payee has confirmed it by email and
    Stripe reports payouts enabled (the account holder's own onboarding with Stripe)."""
    country = (country or "").strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidPayoutMethod("Give the two-letter country of the Stripe account, like US or DE.",
                                  code="invalid_country", field="country")
    holder = _holder(holder_name)
    count = len(session.scalars(select(PayoutMethod.id).where(PayoutMethod.payee_id == payee_id)).all())
    account = stripe.create_connect_account(email=email, country=country,
                                            idempotency_key=f"connect-account:payee:{payee_id}:{count + 1}")
    method = PayoutMethod(payee_id=payee_id, kind="stripe_connect", holder_name=holder,
                          stripe_account_id=account.id)
    return _propose(session, payee_id, method, clock)


def add_manual_method(session: Session, payee_id: int, *, holder_name: str, instructions: str, clock: Clock
                      ) -> PayoutMethod:
    """Paid by hand from the batch's CSV: confirmed by the payee by email, then verified by a finance user."""
    instructions = (instructions or "").strip()
    if not 3 <= len(instructions) <= 1000:
        raise InvalidPayoutMethod("Say how to pay you (bank details or a payment address), up to 1000 characters.",
                                  code="instructions_required", field="instructions")
    method = PayoutMethod(payee_id=payee_id, kind="manual", holder_name=_holder(holder_name),
                          instructions=instructions)
    return _propose(session, payee_id, method, clock)


# --- out-of-band confirmation: a signed, expiring link emailed to the payee's account ------------------------
CONFIRMATION_TTL_S = 48 * 3600
_TOKEN_RE = re.compile(r"(\d{1,12})\.(\d{1,12})\.([A-Za-z0-9_-]{32})")


def _fingerprint(method: PayoutMethod) -> str:
    """What a link confirms is the destination itself: it cannot confirm other bank details."""
    target = method.iban or method.stripe_account_id or method.instructions or ""
    return hashlib.sha256(f"{method.kind}:{method.holder_name}:{target}".encode()).hexdigest()


def _mac(method: PayoutMethod, expires: int, secret: str) -> str:
    message = f"payout-method:{method.id}:{method.payee_id}:{_fingerprint(method)}:{expires}".encode()
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()[:24]).decode()


def confirmation_token(method: PayoutMethod, secret: str, *, clock: Clock,
                       ttl_s: int = CONFIRMATION_TTL_S) -> str:
    expires = int(clock.now().timestamp()) + ttl_s
    return f"{method.id}.{expires}.{_mac(method, expires, secret)}"


def method_for_confirmation(session: Session, token: str, secret: str, *, clock: Clock) -> PayoutMethod:
    """The method a confirmation link names; refused if forged, expired, or replaced since."""
    match = _TOKEN_RE.fullmatch(token or "")
    method = session.get(PayoutMethod, int(match[1])) if match else None
    if method is None or not hmac.compare_digest(_mac(method, int(match[2]), secret), match[3]):
        raise NotFound("This confirmation link is not valid.", code="confirmation_invalid")
    if int(match[2]) < clock.now().timestamp():
        raise Conflict("This confirmation link has expired: save the payout method again to get a new one.",
                       code="confirmation_expired", status=410)
    if method.status == "disabled":
        raise Conflict("This payout method was replaced or withdrawn; the link no longer applies.",
                       code="payout_method_disabled")
    return method


def confirm_method(session: Session, method_id: int, *, clock: Clock, stripe: StripeClient | None = None
                   ) -> PayoutMethod:
    """The payee confirmed the method by email; then its rail decides (see verify_method). A manual
    method waits for a finance user; a Connect account whose payouts Stripe has not enabled stays pending."""
    method = get_method(session, method_id)
    if method.status == "disabled":
        raise Conflict("This payout method was replaced or withdrawn.", code="payout_method_disabled")
    if method.confirmed_at is None:
        method.confirmed_at = clock.now()
        session.flush()
    if method.status == "pending" and (method.kind == "sepa" or (method.kind == "stripe_connect" and stripe)):
        verify_method(session, method.id, clock=clock, stripe=stripe)
    return method


def verify_method(session: Session, method_id: int, *, clock: Clock, stripe: StripeClient | None = None,
                  verifier_id: int | None = None) -> PayoutMethod:
    """Check a confirmed method with its rail: Connect asks Stripe; SEPA re-checks the IBAN; manual needs a
    finance user's word. Verified, it replaces the payee's previous method."""
    method = get_method(session, method_id)
    if method.status == "disabled":
        raise Conflict("That payout method was replaced; verify the current one.", code="payout_method_disabled")
    if method.confirmed_at is None:
        raise Conflict("The payee has not confirmed this payout method from their email yet.",
                       code="payout_method_unconfirmed")
    if method.status == "verified":
        return method
    if method.kind == "stripe_connect":
        if stripe is None:
            raise InvalidPayoutMethod("Stripe is needed to verify a Connect account.", code="stripe_required")
        verified = stripe.retrieve_connect_account(method.stripe_account_id).payouts_enabled
    elif method.kind == "sepa":
        check_account(method.iban or "", method.bic)
        verified = True
    else:
        if verifier_id is None:
            raise InvalidPayoutMethod("A finance user must confirm a manual payout method.",
                                      code="finance_verification_required", status=403)
        method.verified_by = verifier_id
        verified = True
    if verified:
        _activate(session, method, clock)
    session.flush()
    return method


def verified_methods(session: Session, payee_ids) -> dict[int, PayoutMethod]:
    rows = session.scalars(select(PayoutMethod).where(PayoutMethod.payee_id.in_(list(payee_ids)),
                                                      PayoutMethod.status == "verified"))
    return {m.payee_id: m for m in rows}
