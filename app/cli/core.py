"""Core commands: run (supervised), db upgrade, users create, config."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click
from flask.cli import with_appcontext

from app import context
from app.supervisor import ChildSpec, Supervisor


def alembic_config(url: str):
    from alembic.config import Config as AlembicConfig

    import migrations

    here = Path(migrations.__file__).parent
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["url"] = url
    return cfg


def upgrade_database(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@click.group("db", help="Database schema: upgrade to the newest migration, show the current one.")
def db_group():
    pass


@db_group.command("upgrade", help="Apply every migration not yet applied (Alembic, one linear history).")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@with_appcontext
def db_upgrade(revision):
    upgrade_database(context.config().database_url, revision)
    click.echo(f"database upgraded to {revision}")


@db_group.command("current", help="Print the database's current migration revision.")
@with_appcontext
def db_current():
    from alembic import command

    command.current(alembic_config(context.config().database_url))


@click.group("users", help="Manage accounts and roles (create the first admin here).")
def users_group():
    pass


@users_group.command("create", help="Create a user. Example: ninety users create ada@example.com --role admin")
@click.argument("email")
@click.option("--role", "roles", multiple=True, default=("listener",), show_default=True,
              type=click.Choice(["listener", "artist", "advertiser", "finance", "rights_holder", "admin"]),
              help="A role to grant; repeat for several.")
@click.option("--name", "display_name", default=None, help="Display name (default: the email's local part).")
@click.option("--password", default=None, envvar="NINETY_NEW_PASSWORD",
              help="Password (prompted for when omitted; or set NINETY_NEW_PASSWORD).")
@with_appcontext
def users_create(email, roles, display_name, password):
    from core.errors import NinetyError
    from core.users import create_user

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    session = context.runtime().sessions()
    try:
        user = create_user(session, email=email, password=password, display_name=display_name, roles=roles)
        session.commit()
    except NinetyError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from None
    finally:
        session.close()
    click.echo(f"created user {user.id} <{user.email}> with roles {', '.join(user.roles)}")


@users_group.command("roles", help="Set a user's roles. Example: ninety users roles ada@example.com finance admin")
@click.argument("email")
@click.argument("roles", nargs=-1, required=True)
@with_appcontext
def users_roles(email, roles):
    from sqlalchemy import func, select

    from core.errors import NinetyError
    from core.users import User, set_roles

    session = context.runtime().sessions()
    try:
        user = session.scalar(select(User).where(func.lower(User.email) == email.lower()))
        if user is None:
            raise click.ClickException(f"no user with email {email}")
        set_roles(session, user, roles)
        session.commit()
        click.echo(f"{user.email}: {', '.join(user.roles)}")
    except NinetyError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        session.close()


@click.command("config", help="Print every setting, its environment variable, default and meaning.")
@click.option("--markdown", is_flag=True, help="As the README's settings table (paste it there after a change).")
def config_cmd(markdown):
    from app.config import settings_table

    if markdown:
        click.echo("| variable | default | what it does |\n| --- | --- | --- |")
    for env, default, doc in settings_table():
        click.echo(f"| `{env}` | `{default}` | {doc} |" if markdown else f"{env:<24} {default:<36} {doc}")


@click.command("run", help="Serve the site with gunicorn (and the background workers) until Ctrl-C; a worker "
                            "that exits is restarted with backoff.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
@click.option("--threads", default=64, show_default=True, type=int, help="Threads per gunicorn worker.")
@click.option("--with-worker/--no-worker", default=True, show_default=True,
              help="Also run the background workers (the impression flush, the job queue) alongside the web server.")
@with_appcontext
def run_cmd(host, port, workers, threads, with_worker):
    code = serve(host=host, port=port, workers=workers, threads=threads, with_worker=with_worker)
    if code:
        raise SystemExit(code)


def child_commands(*, host: str, port: int, workers: int, threads: int, with_worker: bool,
                   var_dir: Path, mailbox: bool = False) -> list[ChildSpec]:
    """What `ninety run` supervises: gunicorn (essential) and each background worker command that exists,
    and for the demo the local mailbox that receives the site's email."""
    from app.gunicorn_conf import control_socket_path

    specs = [ChildSpec("mailbox", [sys.executable, "-m", "app.cli", "mailbox"])] if mailbox else []
    specs += [ChildSpec("web", [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf",
                               "-w", str(workers), "--threads", str(threads), "-b", f"{host}:{port}",
                               "--control-socket", control_socket_path(var_dir), "app.wsgi:app"], essential=True)]
    if with_worker:
        for name, path in (("worker", ["worker"]), ("jobs", ["jobs", "work"]), ("publisher", ["catalog", "publisher"])):
            if _command_exists(path):
                specs.append(ChildSpec(name, [sys.executable, "-m", "app.cli", *path]))
    return specs


def _command_exists(path: list[str]) -> bool:
    command = click.get_current_context().find_root().command
    for name in path:
        command = getattr(command, "commands", {}).get(name)
        if command is None:
            return False
    return True


def serve(*, host: str, port: int, workers: int = 2, threads: int = 64, with_worker: bool = True,
          mailbox: bool = False) -> int:
    """Run gunicorn and the workers against the servers this process resolved, supervised, until Ctrl-C or
    SIGTERM; stop everything on exit (the embedded servers stop when this process exits). The exit code."""
    cfg = context.config()
    upgrade_database(cfg.database_url)
    env = dict(os.environ, DATABASE_URL=cfg.database_url, REDIS_URL=cfg.redis_url, NINETY_VAR_DIR=str(cfg.var_dir))
    specs = child_commands(host=host, port=port, workers=workers, threads=threads, with_worker=with_worker,
                           var_dir=cfg.var_dir, mailbox=mailbox)
    supervisor = Supervisor(specs, env=env, var_dir=cfg.var_dir, log=lambda line: click.echo(f"ninety: {line}", err=True))
    click.echo(f"Ninety is serving on http://{host}:{port}  (Ctrl-C to stop)")
    # Stop cleanly on Ctrl-C and on SIGTERM alike (a shell's background job may inherit SIGINT ignored),
    # so the children are stopped and the embedded servers this process started are stopped at exit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return supervisor.run()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_requested() -> Callable[[], bool]:
    """Catch SIGTERM and Ctrl-C for a long-running command: the returned function says whether one has
    arrived, so the command's loop finishes its current step and exits cleanly."""
    stopping = threading.Event()

    def stop(*_):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return stopping.is_set


def register(group: click.Group) -> None:
    group.add_command(db_group)
    group.add_command(users_group)
    group.add_command(config_cmd)
    group.add_command(run_cmd)
