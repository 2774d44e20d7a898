"""A stand-in for the parts of Stripe that localstripe lacks, speaking Stripe's wire format.

localstripe has no Connect, always reports a fee of 0 and sends no refund or dispute events, and Stripe
itself cannot be reached from CI. So the payout rail (/v1/accounts, /v1/transfers) and the money side of a
charge (/v1/payment_intents with their latest charge and its balance transaction, whose `fee_details` carry
a non-zero `stripe_fee`; /v1/refunds; /v1/disputes) are exercised over real HTTP with the real `stripe` SDK
against this server: form-encoded requests, JSON objects with `object` and `id`, `expand[]`, Stripe's error
envelope, and `Idempotency-Key` replay (the same key and parameters give the same response; the same key
with other parameters is refused, as Stripe does). Payment intents follow the API since 2022-11-15: a
`latest_charge`, no `charges` list.

Test controls (not Stripe's API): `fail_next(n)` answers the next n transfer requests with a 500 after
recording nothing, and `disable_payouts(account_id)` makes transfers to that account fail as Stripe does for
an account that cannot receive them. `fee_for(amount)` is the processing fee (2.9% + 30 minor units by
default); `confirm(pi, payment_method)` confirms as Stripe.js would; `complete_action(pi)` passes a 3-D
Secure challenge; `dispute(pi, fee=1500)` opens a chargeback and `close_dispute(dp, won=...)` decides it;
`event(type, obj)` builds an event and `sign(payload, secret)` the `Stripe-Signature` header for it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def _parse_form(form) -> dict:
    """Stripe's bracket notation (metadata[item]=1, capabilities[transfers][requested]=true) to nested dicts."""
    out: dict = {}
    for key, value in form.items(multi=True):
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class ConnectStandIn:
    api_key: str = "sk_test_ninety_local"
    accounts: dict = field(default_factory=dict)
    transfers: dict = field(default_factory=dict)
    idempotency: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    payment_intents: dict = field(default_factory=dict)
    charges: dict = field(default_factory=dict)
    balance_transactions: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=dict)
    disputes: dict = field(default_factory=dict)
    fee_for: Callable[[int], int] = field(default=lambda amount: (amount * 29 + 500) // 1000 + 30)
    _fail_next: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # controls -------------------------------------------------------------------------------------
    def fail_next(self, count: int = 1) -> None:
        self._fail_next = count

    def disable_payouts(self, account_id: str) -> None:
        self.accounts[account_id]["payouts_enabled"] = False

    def transfers_to(self, destination: str) -> list[dict]:
        return [t for t in self.transfers.values() if t["destination"] == destination]

    def confirm(self, intent_id: str, payment_method: str = "pm_card_visa") -> dict:
        """What Stripe.js does with the card element: confirm the intent with a card."""
        with self._lock:
            return self._confirm(self.payment_intents[intent_id], payment_method)[1]

    def complete_action(self, intent_id: str, *, succeed: bool = True) -> dict:
        """The buyer passes (or fails) the 3-D Secure challenge."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            intent["next_action"] = None
            if succeed:
                self._charge(intent)
            else:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"code": "payment_intent_authentication_failure",
                                                "message": "The provided PaymentMethod has failed authentication."}
            return intent

    def dispute(self, intent_id: str, *, amount: int | None = None, fee: int = 1500) -> dict:
        """The card holder disputes the charge: the amount and the dispute fee leave the balance."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            charge = self.charges[intent["latest_charge"]]
            amount = charge["amount"] if amount is None else amount
            dispute_id = f"dp_{next(self._ids):016d}"
            withdrawal = self._balance_transaction(-amount, charge["currency"], dispute_id, "adjustment", fee)
            dispute = {"id": dispute_id, "object": "dispute", "amount": amount, "currency": charge["currency"],
                       "charge": charge["id"], "payment_intent": intent["id"], "status": "needs_response",
                       "reason": "fraudulent", "created": int(time.time()), "livemode": False,
                       "balance_transactions": [withdrawal], "metadata": {}}
            charge["disputed"] = True
            self.disputes[dispute_id] = dispute
            return dispute

    def fail_refund(self, refund_id: str, *, reason: str = "expired_or_canceled_card") -> dict:
        """The refund could not reach the card: as Stripe does, the refund turns `failed` and a failure
        balance transaction puts its amount back on the balance (the charge is refundable by it again)."""
        with self._lock:
            refund = self.refunds[refund_id]
            charge = self.charges[refund["charge"]]
            back = self._balance_transaction(refund["amount"], refund["currency"], refund_id, "refund_failure", 0)
            refund.update(status="failed", failure_reason=reason, failure_balance_transaction=back["id"])
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            return refund

    def close_dispute(self, dispute_id: str, *, won: bool, fee_returned: bool = False) -> dict:
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "won" if won else "lost"
            if won:
                fee = -dispute["balance_transactions"][0]["fee"] if fee_returned else 0
                dispute["balance_transactions"].append(self._balance_transaction(
                    dispute["amount"], dispute["currency"], dispute_id, "adjustment", fee))
            return dispute

    def event(self, kind: str, obj: dict, *, created: int | None = None) -> dict:
        """An event as Stripe sends it (a snapshot of the object when it happened)."""
        return {"id": f"evt_{next(self._ids):016d}", "object": "event", "api_version": "2024-06-20",
                "created": created or int(time.time()), "type": kind, "livemode": False, "pending_webhooks": 1,
                "data": {"object": json.loads(json.dumps(obj))}}

    @staticmethod
    def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
        """The `Stripe-Signature` header Stripe would send with `payload`."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"

    # the HTTP side --------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        self.requests.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "authentication_error", "Invalid API Key provided.", code=None)
        params = _parse_form(request.form)
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            if request.method == "POST" and key:
                seen = self.idempotency.get((request.path, key))
                if seen is not None:
                    if seen[0] != params:
                        return _error(400, "idempotency_error", "Keys for idempotent requests can only be used "
                                      "with the same parameters they were first used with.", code=None)
                    status, body = seen[1]
                    return _json(status, body, replayed=True)
            status, body = self._route(request, params)
            if request.method == "POST" and key and status < 500:
                self.idempotency[(request.path, key)] = (params, (status, body))
        return _json(status, body)

    def _route(self, request: Request, params: dict) -> tuple[int, dict]:
        path = request.path.rstrip("/")
        if path == "/v1/accounts" and request.method == "POST":
            return self._create_account(params)
        if path.startswith("/v1/accounts/") and request.method == "GET":
            account = self.accounts.get(path.rsplit("/", 1)[1])
            return (200, account) if account else _missing("account", path)
        if path == "/v1/transfers" and request.method == "POST":
            return self._create_transfer(params)
        if path == "/v1/transfers" and request.method == "GET":
            items = [t for t in self.transfers.values()
                     if not request.args.get("destination") or t["destination"] == request.args["destination"]]
            return 200, {"object": "list", "url": "/v1/transfers", "has_more": False, "data": items}
        if path.startswith("/v1/transfers/") and request.method == "GET":
            transfer = self.transfers.get(path.rsplit("/", 1)[1])
            return (200, transfer) if transfer else _missing("transfer", path)
        if path.startswith(("/v1/payment_intents", "/v1/refunds", "/v1/disputes", "/v1/charges",
                            "/v1/balance_transactions")):
            return self._route_charges(request, path, params)
        return 404, _error_body("invalid_request_error", f"Unrecognized request URL ({request.method}: {path}).")

    # charges: payment intents, their charge and balance transaction, refunds, disputes --------------------
    def _route_charges(self, request: Request, path: str, params: dict) -> tuple[int, dict]:
        parts = path.split("/")[2:]  # ["payment_intents", id, "confirm"]
        kind, ident = parts[0], parts[1] if len(parts) > 1 else None
        expand = [v for k, v in request.args.items(multi=True) if k.startswith("expand")] + _expand_list(params)
        if kind == "payment_intents" and request.method == "POST" and ident is None:
            return self._create_intent(params)
        if kind == "payment_intents" and request.method == "POST" and len(parts) == 3 and parts[2] == "confirm":
            intent = self.payment_intents.get(ident)
            if intent is None:
                return _missing("payment_intent", path.rsplit("/", 1)[0])
            return self._confirm(intent, params.get("payment_method") or intent.get("payment_method"))
        if kind == "payment_intents" and request.method == "POST" and len(parts) == 2:
            intent = self.payment_intents.get(ident)
            if intent is None:
                return _missing("payment_intent", path)
            if params.get("payment_method") and intent["status"] in ("requires_payment_method", "requires_confirmation"):
                intent["payment_method"] = params["payment_method"]
                intent["status"] = "requires_confirmation"
            intent["metadata"].update(params.get("metadata") or {})
            return 200, intent
        if kind == "refunds" and request.method == "POST":
            return self._create_refund(params)
        if kind == "refunds" and request.method == "GET" and ident is None:
            wanted = request.args.get("payment_intent")
            items = [r for r in self.refunds.values() if not wanted or r["payment_intent"] == wanted]
            return 200, {"object": "list", "url": "/v1/refunds", "has_more": False, "data": items}
        if request.method == "GET" and ident is not None:
            store = {"payment_intents": self.payment_intents, "refunds": self.refunds, "disputes": self.disputes,
                     "charges": self.charges, "balance_transactions": self.balance_transactions}[kind]
            obj = store.get(ident)
            if obj is None:
                return _missing(kind.rstrip("s"), path)
            return 200, self._expanded(obj, expand)
        return 404, _error_body("invalid_request_error", f"Unrecognized request URL ({request.method}: {path}).")

    def _expanded(self, obj: dict, paths: list[str]) -> dict:
        obj = json.loads(json.dumps(obj))
        stores = {"latest_charge": self.charges, "balance_transaction": self.balance_transactions,
                  "payment_intent": self.payment_intents, "charge": self.charges}
        for path in paths:
            node = obj
            for name in path.split("."):
                value = node.get(name) if isinstance(node, dict) else None
                if isinstance(value, str) and name in stores and value in stores[name]:
                    node[name] = json.loads(json.dumps(stores[name][value]))
                node = node.get(name) if isinstance(node, dict) else None
        return obj

    def _create_intent(self, params: dict) -> tuple[int, dict]:
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            return 400, _error_body("invalid_request_error", "Invalid integer: amount",
                                    code="parameter_invalid_integer", param="amount")
        if amount < 1:
            return 400, _error_body("invalid_request_error", "Amount must be at least 1.", code="amount_too_small",
                                    param="amount")
        intent_id = f"pi_{next(self._ids):016d}"
        intent = {"id": intent_id, "object": "payment_intent", "amount": amount, "amount_received": 0,
                  "currency": params.get("currency", "usd"), "status": "requires_payment_method",
                  "client_secret": f"{intent_id}_secret_{next(self._ids):08d}", "latest_charge": None,
                  "payment_method": params.get("payment_method"), "metadata": params.get("metadata", {}),
                  "next_action": None, "last_payment_error": None, "created": int(time.time()),
                  "livemode": False, "payment_method_types": ["card"]}
        self.payment_intents[intent_id] = intent
        if intent["payment_method"]:
            intent["status"] = "requires_confirmation"
        if str(params.get("confirm", "")).lower() == "true" and intent["payment_method"]:
            return self._confirm(intent, intent["payment_method"])
        return 200, intent

    def _confirm(self, intent: dict, payment_method: str | None) -> tuple[int, dict]:
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            return 400, _error_body("invalid_request_error", "This PaymentIntent's status does not allow "
                                    "confirmation.", code="payment_intent_unexpected_state")
        intent["payment_method"] = payment_method
        if payment_method == "pm_card_threeDSecure2Required":
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
            return 200, intent
        if payment_method == "pm_card_chargeDeclined":
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"code": "card_declined", "message": "Your card was declined."}
            return 200, intent
        self._charge(intent)
        return 200, intent

    def _charge(self, intent: dict) -> None:
        charge_id = f"ch_{next(self._ids):016d}"
        txn = self._balance_transaction(intent["amount"], intent["currency"], charge_id, "charge",
                                        self.fee_for(intent["amount"]))
        self.charges[charge_id] = {"id": charge_id, "object": "charge", "amount": intent["amount"],
                                   "amount_captured": intent["amount"], "amount_refunded": 0,
                                   "currency": intent["currency"], "payment_intent": intent["id"],
                                   "status": "succeeded", "paid": True, "captured": True, "refunded": False,
                                   "disputed": False, "balance_transaction": txn["id"],
                                   "metadata": intent["metadata"], "created": int(time.time())}
        intent["latest_charge"] = charge_id
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]

    def _balance_transaction(self, amount: int, currency: str, source: str, kind: str, fee: int) -> dict:
        txn_id = f"txn_{next(self._ids):016d}"
        details = [{"type": "stripe_fee", "amount": fee, "currency": currency, "application": None,
                    "description": "Stripe processing fees"}] if fee else []
        txn = {"id": txn_id, "object": "balance_transaction", "amount": amount, "currency": currency,
               "fee": fee, "fee_details": details, "net": amount - fee, "source": source, "type": kind,
               "status": "available", "created": int(time.time())}
        self.balance_transactions[txn_id] = txn
        return txn

    def _create_refund(self, params: dict) -> tuple[int, dict]:
        intent = self.payment_intents.get(params.get("payment_intent") or "")
        if intent is None or not intent.get("latest_charge"):
            return 400, _error_body("invalid_request_error", "No such payment_intent, or it has no charge.",
                                    code="resource_missing", param="payment_intent")
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params["amount"]) if params.get("amount") else left
        if amount < 1 or amount > left:
            return 400, _error_body("invalid_request_error", f"Refund amount ({amount}) is greater than unrefunded "
                                    f"amount on charge ({left})", code="amount_too_large", param="amount")
        if charge["disputed"]:
            return 400, _error_body("invalid_request_error", f"Charge {charge['id']} has been disputed.",
                                    code="charge_disputed")
        refund_id = f"re_{next(self._ids):016d}"
        txn = self._balance_transaction(-amount, charge["currency"], refund_id, "refund", 0)
        refund = {"id": refund_id, "object": "refund", "amount": amount, "currency": charge["currency"],
                  "charge": charge["id"], "payment_intent": intent["id"], "status": "succeeded",
                  "balance_transaction": txn["id"], "metadata": params.get("metadata", {}),
                  "created": int(time.time())}
        self.refunds[refund_id] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return 200, refund

    def _create_account(self, params: dict) -> tuple[int, dict]:
        account_id = f"acct_{next(self._ids):016d}"
        self.accounts[account_id] = {
            "id": account_id, "object": "account", "type": params.get("type", "express"),
            "email": params.get("email"), "country": params.get("country", "US"),
            "created": int(time.time()), "charges_enabled": False, "payouts_enabled": True,
            "details_submitted": True, "capabilities": {"transfers": "active"}, "metadata": params.get("metadata", {}),
        }
        return 200, self.accounts[account_id]

    def _create_transfer(self, params: dict) -> tuple[int, dict]:
        if self._fail_next > 0:
            self._fail_next -= 1
            return 500, _error_body("api_error", "An unknown error occurred (stand-in fault injection).")
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            return 400, _error_body("invalid_request_error", "Invalid integer: amount", code="parameter_invalid_integer",
                                    param="amount")
        if amount <= 0:
            return 400, _error_body("invalid_request_error", "This value must be greater than or equal to 1.",
                                    code="parameter_invalid_integer", param="amount")
        destination = params.get("destination")
        account = self.accounts.get(destination or "")
        if account is None:
            return 400, _error_body("invalid_request_error", f"No such destination: '{destination}'",
                                    code="resource_missing", param="destination")
        if not account["payouts_enabled"]:
            return 400, _error_body("invalid_request_error", "The destination account cannot receive transfers: "
                                    "its payouts are disabled.", code="account_invalid", param="destination")
        transfer_id = f"tr_{next(self._ids):016d}"
        transfer = {
            "id": transfer_id, "object": "transfer", "amount": amount, "amount_reversed": 0,
            "currency": params.get("currency", "usd"), "destination": destination, "created": int(time.time()),
            "description": params.get("description"), "metadata": params.get("metadata", {}),
            "reversed": False, "reversals": {"object": "list", "data": [], "has_more": False},
            "transfer_group": params.get("transfer_group"), "livemode": False,
        }
        self.transfers[transfer_id] = transfer
        return 200, transfer


def _expand_list(params: dict) -> list[str]:
    """expand[]=a&expand[]=b in a form body (the bracket parser keeps the last one under "expand")."""
    value = params.get("expand")
    if isinstance(value, dict):
        return list(value.values())
    return [value] if isinstance(value, str) else []


def _error_body(kind: str, message: str, code: str | None = None, param: str | None = None) -> dict:
    error = {"type": kind, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def _error(status: int, kind: str, message: str, code: str | None) -> Response:
    return _json(status, _error_body(kind, message, code))


def _missing(kind: str, path: str) -> tuple[int, dict]:
    return 404, _error_body("invalid_request_error", f"No such {kind}: '{path.rsplit('/', 1)[1]}'",
                            code="resource_missing", param="id")


def _json(status: int, body: dict, replayed: bool = False) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Request-Id"] = f"req_{int(time.time() * 1000)}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


class RunningStandIn:
    """The stand-in served on a loopback port in a thread."""

    def __init__(self, api_key: str = "sk_test_ninety_local") -> None:
        self.app = ConnectStandIn(api_key=api_key)
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ConnectStandIn:
        self._thread.start()
        self.app.url = self.url
        return self.app

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
