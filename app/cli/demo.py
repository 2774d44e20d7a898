"""`ninety demo`: migrate, seed a believable demo once, and (with --serve) serve it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app import context
from app.cli.core import serve, upgrade_database
from app.cli.mailbox import is_listening, is_local
from core.embedded import (
    EmbeddedStripe,
    configure_localstripe_webhook,
    ensure_localstripe,
    release_localstripe,
)
from core.mail import parse_smtp_url


@click.command("demo", help="Migrate, seed the demo data (once) and, with --serve, serve it on :8000.")
@click.option("--serve/--no-serve", "do_serve", default=False, help="Serve the site after seeding.")
@click.option("--port", default=8000, show_default=True, type=int)
@with_appcontext
def demo_cmd(do_serve: bool, port: int):
    from app.seed.accounts import DEMO_PASSWORD

    runtime = context.runtime()
    upgrade_database(runtime.config.database_url)
    with embedded_stripe(runtime.config) as stripe:
        _seed_once(runtime)
        click.echo(f"demo accounts (password {DEMO_PASSWORD!r}): admin@ninety.test, finance@ninety.test, "
                   "approver@ninety.test, listener@ninety.test, artist accounts *@artists.ninety.test, "
                   "advertiser@ninety.test")
        if do_serve:
            smtp = parse_smtp_url(runtime.config.smtp_url)
            mailbox = is_local(runtime.config.smtp_url) and not is_listening(smtp.host, smtp.port)
            if mailbox:
                click.echo(f"email is kept under {runtime.config.var_dir}/mail/ (a local mailbox on "
                           f"{smtp.host}:{smtp.port})")
            if stripe is not None:
                # The site's processes find localstripe through the environment; localstripe delivers its
                # events to the site's webhook endpoint, signed with the secret the site verifies.
                os.environ["STRIPE_API_BASE"], os.environ["STRIPE_WEBHOOK_SECRET"] = stripe.url, stripe.webhook_secret
                configure_localstripe_webhook(stripe.url, f"http://127.0.0.1:{port}/webhooks/stripe",
                                              stripe.webhook_secret)
                click.echo(f"card payments go to an embedded Stripe (localstripe) at {stripe.url}; "
                           "test card 4242 4242 4242 4242, 3-D Secure 4000 0025 0000 3155")
            code = serve(host="127.0.0.1", port=port, mailbox=mailbox)
            if code:
                raise SystemExit(code)


def _seed_once(runtime) -> None:
    from app.seed import seeders
    from core.users import User

    with runtime.sessions() as session:
        seeded = session.scalar(select(User.id).where(User.email == "admin@ninety.test")) is not None
    if seeded:
        click.echo("demo data already present; not seeding again")
        return
    state: dict = {}
    for module in seeders():
        click.echo(f"seeding {module.__name__.rsplit('.', 1)[-1]} …")
        module.seed(runtime, state)
    click.echo("demo seeded")


@contextlib.contextmanager
def embedded_stripe(config) -> Iterator[EmbeddedStripe | None]:
    """With no Stripe key (STRIPE_API_KEY unset) and no STRIPE_API_BASE, run localstripe as an embedded
    Stripe (like PostgreSQL and Redis) and point `config` at it for the block; yields None otherwise."""
    if os.environ.get("STRIPE_API_KEY") or config.stripe_api_base:
        yield None
        return
    stripe = ensure_localstripe(config.var_dir)
    saved = config.stripe_api_base, config.stripe_webhook_secret
    config.stripe_api_base, config.stripe_webhook_secret = stripe.url, stripe.webhook_secret
    try:
        yield stripe
    finally:
        config.stripe_api_base, config.stripe_webhook_secret = saved
        release_localstripe(Path(config.var_dir) / "stripe")


def register(group: click.Group) -> None:
    group.add_command(demo_cmd)
