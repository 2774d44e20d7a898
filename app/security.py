"""The Content-Security-Policy every response carries, set in one place.

Pages load scripts, styles, images and media from the site itself only: no inline script, no inline
style, no `on*=` handlers, no `javascript:` URLs (tests/app/test_csp.py checks every template and loads
the key pages in Chromium with zero violations). A page that embeds Stripe.js calls `allow_stripe_js()`;
its response then also allows the configured Stripe origin (STRIPE_API_BASE: localstripe in the demo and
tests, which serves a stand-in Stripe.js) or, with none, js.stripe.com and api.stripe.com.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, g

BASE_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "media-src": ["'self'"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-src": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def stripe_origins(stripe_api_base: str) -> dict[str, list[str]]:
    """What a page with Stripe.js needs, by directive."""
    if stripe_api_base:
        parts = urlsplit(stripe_api_base)
        origin = f"{parts.scheme}://{parts.netloc}"
        return {"script-src": [origin], "connect-src": [origin], "frame-src": [origin]}
    return {"script-src": ["https://js.stripe.com"], "connect-src": ["https://api.stripe.com"],
            "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"]}


def build_policy(extra: dict[str, list[str]] | None = None) -> str:
    directives = {name: list(sources) for name, sources in BASE_POLICY.items()}
    for name, sources in (extra or {}).items():
        current = [s for s in directives.get(name, []) if s != "'none'"]
        directives[name] = current + [s for s in sources if s not in current]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def allow_stripe_js() -> None:
    """Call from a view whose page loads Stripe.js."""
    g.csp_allow_stripe = True


def init_security(app: Flask, *, stripe_api_base: str) -> None:
    policy = build_policy()
    with_stripe = build_policy(stripe_origins(stripe_api_base))

    @app.after_request
    def _content_security_policy(response):
        response.headers.setdefault("Content-Security-Policy",
                                    with_stripe if g.get("csp_allow_stripe") else policy)
        return response
