"""Jinja filters shared by every template."""

from __future__ import annotations

from flask import Flask

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
