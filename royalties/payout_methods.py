"""Changing how a payee is paid: saved as a pending replacement, confirmed from the payee's own email.

Whoever can open a payee's payout page (its account, or any member of its artist) can propose a new method,
but only the person at the payee's account email can confirm it: the signed, expiring link goes there,
never to the page. Until the new method is confirmed and its rail agrees, payouts keep going to the method
they use now. The payee is emailed at every change: the request (with the link), and the switch.
Emails leave after the caller's commit (core.jobs); these functions never commit.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from catalog.models import Payee
from core.clock import Clock
from core.errors import NotFound, ValidationError
from core.jobs import send_mail_later
from core.mail import Message, mask_email
from core.users import User
from payments import services as payments
from payments.models import PayoutMethod
from payments.stripe_client import StripeClient
from royalties.errors import RoyaltiesError

METHOD_KINDS = ("sepa", "stripe_connect", "manual")


def account_email(session: Session, payee: Payee) -> str | None:
    """Where a payee is reached: the email of the account it belongs to, else the address it was invited at."""
    if payee.user_id is not None:
        user = session.get(User, payee.user_id)
        if user is not None and user.email:
            return user.email
    return payee.email


def propose_method(session: Session, payee: Payee, *, kind: str, holder_name: str, clock: Clock, secret: str,
                   confirm_link: Callable[[str], str], iban: str = "", bic: str | None = None,
                   email: str = "", country: str = "", instructions: str = "",
                   stripe: Callable[[], StripeClient] | None = None) -> PayoutMethod:
    """Save a new method as pending and email its confirmation link to the payee's account."""
    recipient = account_email(session, payee)
    if not recipient:
        raise RoyaltiesError("This payee has no email address to confirm a payout method with.",
                             code="payee_without_email")
    if kind == "sepa":
        method = payments.add_sepa_method(session, payee.id, holder_name=holder_name, iban=iban, bic=bic or None,
                                          clock=clock)
    elif kind == "stripe_connect":
        if stripe is None:
            raise RoyaltiesError("Stripe Connect is not available here.", code="stripe_required")
        method = payments.add_stripe_method(session, payee.id, holder_name=holder_name,
                                            email=email or recipient, country=country, stripe=stripe(),
                                            clock=clock)
    elif kind == "manual":
        method = payments.add_manual_method(session, payee.id, holder_name=holder_name,
                                            instructions=instructions, clock=clock)
    else:
        raise ValidationError("Choose SEPA, Stripe Connect or a manual payout.", code="unknown_method_kind",
                              field="kind")
    active = payments.active_method(session, payee.id)
    link = confirm_link(payments.confirmation_token(method, secret, clock=clock))
    hours = payments.CONFIRMATION_TTL_S // 3600
    send_mail_later(session, Message(
        to=recipient, subject=f"Confirm the new payout method for {payee.display_name}",
        body=(f"Someone asked Ninety to pay {payee.display_name}'s earnings to a new payout method:\n\n"
              f"    {method.describe()}\n\n"
              f"If that was you, confirm it within {hours} hours:\n\n    {link}\n\n"
              + (f"Until then payouts keep going to: {active.describe()}.\n"
                 if active else "Until then no payout is sent.\n")
              + "If it was not you, do not follow the link, and tell us: nothing changes without it.\n")))
    return method


def confirm_method_from_email(session: Session, token: str, *, clock: Clock, secret: str,
                              stripe: Callable[[], StripeClient] | None = None) -> PayoutMethod:
    """Follow the emailed link: the method is confirmed, then verified if its rail agrees (see payments)."""
    method = payments.method_for_confirmation(session, token, secret, clock=clock)
    before = payments.active_method(session, method.payee_id)
    client = stripe() if stripe is not None and method.kind == "stripe_connect" else None
    first_time = method.confirmed_at is None
    payments.confirm_method(session, method.id, clock=clock, stripe=client)
    _tell_if_switched(session, method, before, confirmed_now=first_time)
    return method


def recheck_method(session: Session, payee: Payee, *, clock: Clock, stripe: StripeClient | None = None,
                   verifier_id: int | None = None) -> PayoutMethod:
    """Ask the rail again about the payee's pending method (Stripe onboarding finished, finance checked)."""
    method = payments.pending_method(session, payee.id)
    if method is None:
        raise NotFound("There is no payout method waiting for verification.", code="no_pending_method")
    return verify_method(session, method.id, clock=clock, stripe=stripe, verifier_id=verifier_id)


def verify_method(session: Session, method_id: int, *, clock: Clock, stripe: StripeClient | None = None,
                  verifier_id: int | None = None) -> PayoutMethod:
    """payments.verify_method, and the payee is told when it switched their payouts."""
    method = payments.get_method(session, method_id)
    before = payments.active_method(session, method.payee_id)
    payments.verify_method(session, method.id, clock=clock, stripe=stripe, verifier_id=verifier_id)
    _tell_if_switched(session, method, before)
    return method


def _tell_if_switched(session: Session, method: PayoutMethod, before: PayoutMethod | None, *,
                      confirmed_now: bool = False) -> None:
    payee = session.get(Payee, method.payee_id)
    recipient = account_email(session, payee) if payee is not None else None
    if not recipient:
        return
    if method.status == "verified" and (before is None or before.id != method.id):
        body = (f"From now on {payee.display_name}'s payouts go to:\n\n    {method.describe()}\n\n"
                + (f"It replaces: {before.describe()} (no longer used).\n" if before else "")
                + "If you did not make this change, tell us at once.\n")
        send_mail_later(session, Message(to=recipient, subject=f"Payout method changed for {payee.display_name}",
                                         body=body))
    elif confirmed_now and method.status == "pending":
        waiting = ("Stripe reports the account's payouts enabled" if method.kind == "stripe_connect"
                   else "a finance user has checked the instructions")
        send_mail_later(session, Message(
            to=recipient, subject=f"Payout method confirmed for {payee.display_name}",
            body=f"You confirmed {method.describe()}. It takes over once {waiting}.\n"))


def masked_account_email(session: Session, payee: Payee) -> str:
    return mask_email(account_email(session, payee) or "")
