"""What the card-payment pages share (checkout, advertiser top-up, and later subscriptions): the Stripe
client for a request, the Stripe.js settings the page's include needs, and reading a JSON or form body.

Not a blueprint (modules starting with "_" are not discovered): blueprints never import each other.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import jsonify, request

from app import context
from core.errors import ValidationError
from payments.stripe_client import StripeClient, shared_stripe_client

STRIPE_JS = "https://js.stripe.com/v3/"
MAX_ID = 2**31 - 1


def stripe_client() -> StripeClient:
    cfg = context.config()
    return shared_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base)


def stripe_js_settings() -> dict:
    """For templates/sales/_stripe_js.html: where Stripe.js comes from and with which publishable key.

    With STRIPE_API_BASE set (the embedded localstripe in the demo, or in the tests) the stand-in Stripe.js
    that localstripe serves at <base>/js.stripe.com/v3/ is loaded, and the card is confirmed through Ninety
    (card.js explains why); the view must also call `app.security.allow_stripe_js()`.
    """
    cfg = context.config()
    base = cfg.stripe_api_base.rstrip("/")
    return {"url": f"{base}/js.stripe.com/v3/" if base else STRIPE_JS, "publishable_key": cfg.stripe_publishable_key,
            "local": bool(base)}


def body() -> dict:
    """The request's fields, from a JSON object (the page's script) or a form."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValidationError("Send a JSON object.", code="invalid_body")
        return data
    return request.form.to_dict()


def id_field(data: dict, name: str, *, required: bool = True) -> int | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise ValidationError(f"{name} is missing.", code="invalid_input", field=name)
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{name} must be a whole number.", code="invalid_input", field=name) from None
    if not 1 <= number <= MAX_ID:
        raise ValidationError(f"There is no such {name.removesuffix('_id')}.", code="invalid_input", field=name)
    return number


def text_field(data: dict, name: str, *, max_len: int = 100) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValidationError(f"{name} must be text.", code="invalid_input", field=name)
    text = str(value).strip()
    if len(text) > max_len:
        raise ValidationError(f"{name} is longer than {max_len} characters.", code="invalid_input", field=name)
    return text


def confirm_with_card(id_name: str, object_id: int, confirm: Callable[[str], object]):
    """The card forms' confirmation step (checkout, top-up): the payment method the page tokenised, handed to
    `confirm` (a sales service returning a Checkout); the answer carries its status and, for 3-D Secure
    (`requires_action`), the client secret card.js completes it with."""
    payment_method = text_field(body(), "payment_method", max_len=255)
    if not payment_method:
        raise ValidationError("The card is missing; enter it again.", code="invalid_input", field="payment_method")
    checkout = confirm(payment_method)
    return jsonify({id_name: object_id, "status": checkout.status, "client_secret": checkout.client_secret})
