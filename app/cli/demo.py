"""`ninety demo`: migrate, seed a believable demo once, and (with --serve) serve it."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app import context
from app.cli.core import serve, upgrade_database
from app.cli.mailbox import is_listening, is_local
from core.mail import parse_smtp_url


@click.command("demo", help="Migrate, seed the demo data (once) and, with --serve, serve it on :8000.")
@click.option("--serve/--no-serve", "do_serve", default=False, help="Serve the site after seeding.")
@click.option("--port", default=8000, show_default=True, type=int)
@with_appcontext
def demo_cmd(do_serve: bool, port: int):
    from app.seed import seeders
    from app.seed.accounts import DEMO_PASSWORD
    from core.users import User

    runtime = context.runtime()
    upgrade_database(runtime.config.database_url)
    with runtime.sessions() as session:
        seeded = session.scalar(select(User.id).where(User.email == "admin@ninety.test")) is not None
    if seeded:
        click.echo("demo data already present; not seeding again")
    else:
        state: dict = {}
        for module in seeders():
            click.echo(f"seeding {module.__name__.rsplit('.', 1)[-1]} …")
            module.seed(runtime, state)
        click.echo("demo seeded")
    click.echo(f"demo accounts (password {DEMO_PASSWORD!r}): admin@ninety.test, finance@ninety.test, "
               "approver@ninety.test, listener@ninety.test, artist accounts *@artists.ninety.test, "
               "advertiser@ninety.test")
    if do_serve:
        smtp = parse_smtp_url(runtime.config.smtp_url)
        mailbox = is_local(runtime.config.smtp_url) and not is_listening(smtp.host, smtp.port)
        if mailbox:
            click.echo(f"email is kept under {runtime.config.var_dir}/mail/ (a local mailbox on "
                       f"{smtp.host}:{smtp.port})")
        code = serve(host="127.0.0.1", port=port, mailbox=mailbox)
        if code:
            raise SystemExit(code)


def register(group: click.Group) -> None:
    group.add_command(demo_cmd)
