"""`ninety notices …`: takedown notices from the command line: what is overdue, and the timers.

`overdue` lists every undecided notice past its 24-hour decision deadline (exit status 1 when there is one,
so a cron job or monitor can alert on it). `tick` runs the case timers once (restore after the counter-notice
period, uphold when no counter-notice came, late escrow settlements); the catalog's publisher loop runs it
every round under `ninety run`. `fingerprint-assets` fingerprints stored audio that has none yet, so a
notice's reference file can be matched against it.
"""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from app import context


@click.group("notices", help="Takedown notices: overdue decisions and the case timers.")
def notices_group():
    pass


def settings_for(runtime):
    from rights.settings import RightsSettings

    return RightsSettings.from_config(runtime.config)


def tick_once(runtime) -> dict:
    """One unit of work: run the rights timers and commit. What moved."""
    from rights.services import tick

    session = runtime.sessions()
    try:
        result = tick(session, clock=runtime.clock, settings=settings_for(runtime))
        session.commit()
        return result.as_dict()
    finally:
        session.close()


@notices_group.command("overdue", help="List undecided notices past their decision deadline (exit 1 if any).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int, default=1000, show_default=True)
@with_appcontext
def overdue_cmd(as_json, limit):
    from rights.services import overdue_count, overdue_notices

    runtime = context.runtime()
    now = runtime.clock.now()
    session = runtime.sessions()
    try:
        notices = overdue_notices(session, now=now, limit=limit)
        total = overdue_count(session, now=now) if len(notices) >= limit else len(notices)
        for notice in notices:
            hours = (now - notice.deadline_at).total_seconds() / 3600
            if as_json:
                click.echo(json.dumps({"notice_id": notice.id, "claimant": notice.claimant_name,
                                       "received_at": notice.received_at.isoformat(),
                                       "deadline_at": notice.deadline_at.isoformat(),
                                       "hours_overdue": round(hours, 2), "tracks": len(notice.cases)}))
            else:
                click.echo(f"notice {notice.id}  {notice.claimant_name}  deadline {notice.deadline_at:%Y-%m-%d %H:%M} "
                           f"UTC  {hours:.1f} h overdue  {len(notice.cases)} track(s)")
        if not as_json:
            click.echo(f"{total} notice{'s' if total != 1 else ''} overdue")
    finally:
        session.close()
    if total:
        raise SystemExit(1)


@notices_group.command("tick", help="Run the case timers once: restores, upholds, late escrow settlements.")
@with_appcontext
def tick_cmd():
    moved = tick_once(context.runtime())
    click.echo(f"{len(moved['restored'])} restored, {len(moved['upheld'])} upheld, "
               f"{moved['late_settlements']} late settlement(s)")


@notices_group.command("fingerprint-assets", help="Fingerprint stored audio that has no fingerprint yet.")
@click.option("--limit", type=int, default=1000, show_default=True)
@with_appcontext
def fingerprint_assets_cmd(limit):
    from sqlalchemy import text

    from catalog.storage import MediaStore
    from rights.staydown import fingerprint_asset

    runtime = context.runtime()
    store = MediaStore(runtime.config.media_path)
    session = runtime.sessions()
    done = 0
    try:
        shas = session.scalars(text("SELECT a.sha256 FROM audio_assets a WHERE NOT EXISTS (SELECT 1 FROM "
                                    "rights_audio_fingerprints f WHERE f.sha256 = a.sha256) ORDER BY a.id "
                                    "LIMIT :limit"), {"limit": limit}).all()
        for sha in shas:
            if fingerprint_asset(session, sha, store.path_for("audio", sha)) is not None:
                done += 1
            session.commit()
    finally:
        session.close()
    click.echo(f"{done} of {len(shas)} asset(s) fingerprinted")


def register(group: click.Group) -> None:
    group.add_command(notices_group)
