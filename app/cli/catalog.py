"""`ninety catalog …`: the catalog's background step, recording that scheduled releases went live.

Pages and the API already show a scheduled release from its `publish_at` on (decided at read time: GET
handlers do not write); this step only records it (status `published`, its tracks `published`), so the
studio, exports and sales see the stored state. `ninety run` supervises `ninety catalog publisher`.
"""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from app import context
from app.cli import notices
from app.cli.core import stop_requested


@click.group("catalog", help="The catalog's background steps.")
def catalog_group():
    pass


def publish_due(runtime) -> int:
    """One unit of work: promote the due scheduled releases and commit. The number promoted."""
    from catalog.services import promote_due_releases

    session = runtime.sessions()
    try:
        promoted = promote_due_releases(session, runtime.clock)
        session.commit()
        return promoted
    finally:
        session.close()


@catalog_group.command("publish-due", help="Record scheduled releases whose time has come as published, once.")
@with_appcontext
def publish_due_cmd():
    promoted = publish_due(context.runtime())
    click.echo(f"{promoted} scheduled release{'s' if promoted != 1 else ''} published")


@catalog_group.command("publisher", help="Run `publish-due` and the takedown timers (`notices tick`) every "
                                         "--interval seconds until stopped (SIGTERM or Ctrl-C); `ninety run` "
                                         "supervises it.")
@click.option("--interval", type=float, default=30.0, show_default=True, help="Seconds between runs.")
@with_appcontext
def publisher_cmd(interval):
    runtime = context.runtime()
    stopping = stop_requested()
    click.echo(f"publisher: promoting due scheduled releases every {interval:g}s (Ctrl-C to stop)")
    while not stopping():
        promoted = publish_due(runtime)
        if promoted:
            click.echo(f"publisher: {promoted} scheduled release{'s' if promoted != 1 else ''} published")
        moved = notices.tick_once(runtime)  # the takedown timers: restores after counter-notices, upholds
        if moved["restored"] or moved["upheld"]:
            click.echo(f"publisher: {len(moved['restored'])} takedown case(s) restored, "
                       f"{len(moved['upheld'])} upheld")
        deadline = time.monotonic() + interval
        while not stopping() and time.monotonic() < deadline:
            time.sleep(min(0.5, interval))


def register(group: click.Group) -> None:
    group.add_command(catalog_group)
