"""Jinja filters shared by every template."""

from __future__ import annotations

from flask import Flask, request, url_for

from core.money import Money


def money(value, currency: str | None = None, full: bool = False) -> str:
    if isinstance(value, Money):
        return value.format(full=full)
    if value is None:
        return "—"
    return Money(int(value), currency or "USD").format(full=full)


def duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(float(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def init_templating(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["duration"] = duration
    # Areas add (label, endpoint, roles) in their init_app; roles=() shows the link to everyone.
    app.jinja_env.globals["nav_links"] = []
    app.jinja_env.globals["page_url"] = _page_urls()


def _page_urls():
    """`page_url(endpoint)`: the address of a page that takes no arguments, as `url_for` gives it, built once
    per mount point (the request's script root). Every page's header and footer link a dozen such pages, and
    building each anew (Werkzeug's URL map) took ~5% of a page's CPU."""
    built: dict[tuple[str, str], str] = {}

    def page_url(endpoint: str) -> str:
        key = (request.script_root, endpoint)
        url = built.get(key)
        if url is None:
            url = built[key] = url_for(endpoint)
        return url

    return page_url
