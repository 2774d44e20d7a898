"""A stand-in for Stripe Connect's /v1/accounts and /v1/transfers, speaking Stripe's wire format.

localstripe has no Connect, and Stripe itself cannot be reached from CI, so the payout rail is exercised
over real HTTP with the real `stripe` SDK against this server: form-encoded requests, JSON objects with
`object` and `id`, Stripe's error envelope, and `Idempotency-Key` replay (the same key and parameters give
the same response; the same key with other parameters is refused, as Stripe does).

Test controls (not Stripe's API): `fail_next(n)` answers the next n transfer requests with a 500 after
recording nothing, and `disable_payouts(account_id)` makes transfers to that account fail as Stripe does for
an account that cannot receive them.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
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
        return 404, _error_body("invalid_request_error", f"Unrecognized request URL ({request.method}: {path}).")

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
