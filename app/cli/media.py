"""`ninety media …`: make renditions ahead of time (popular tracks' download formats) and look at the jobs.

`premake` queues the missing download formats of the most downloaded lossless tracks for the job worker
(`ninety jobs work`); with `--now` it makes them in this process instead. `make` does one track's streams
and formats (a repair after a failed job, or a demo re-run). `status` counts the media jobs by state.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from app import context


@click.group("media", help="Stream copies, waveforms and download formats (renditions) and their jobs.")
def media_group():
    pass


@media_group.command("premake", help="Make the download formats of the most downloaded tracks ahead of time.")
@click.option("--top", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="How many of the most downloaded tracks.")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Count downloads over this many days.")
@click.option("--format", "formats", multiple=True, help="Only these formats (default: every one offered).")
@click.option("--now", is_flag=True, help="Make them in this process instead of queueing jobs.")
@with_appcontext
def premake_cmd(top, days, formats, now):
    from catalog import renditions
    from catalog.storage import MediaStore

    unknown = [f for f in formats if f not in renditions.DOWNLOAD_FORMATS]
    if unknown:
        raise click.BadParameter(f"not a download format: {', '.join(unknown)} "
                                 f"(choose from {', '.join(renditions.DOWNLOAD_FORMATS)})", param_hint="--format")
    runtime = context.runtime()
    with runtime.sessions() as session:
        assets = renditions.popular_assets(session, limit=top, since=runtime.clock.now() - timedelta(days=days))
        if not now:
            queued = renditions.premake_downloads(session, assets, list(formats) or None)
            session.commit()
            click.echo(f"{len(assets)} popular tracks; {queued} download jobs queued")
            return
    store = MediaStore(runtime.config.media_path)
    failed = 0
    for asset_id in assets:
        for job in renditions.make_all_now(runtime.sessions, store, asset_id, list(formats) or None):
            if job.status != "done":
                failed += 1
                click.echo(f"asset {asset_id} {job.purpose}: {job.error_code}: {job.error_detail}", err=True)
    click.echo(f"{len(assets)} popular tracks made; {failed} failed")
    if failed:
        raise SystemExit(1)


@media_group.command("make", help="Make one track's stream copies, waveform and download formats now.")
@click.argument("track_id", type=int)
@with_appcontext
def make_cmd(track_id):
    from catalog import renditions
    from catalog.models import Track
    from catalog.storage import MediaStore

    runtime = context.runtime()
    with runtime.sessions() as session:
        track = session.get(Track, track_id)
        if track is None or track.asset_id is None:
            raise click.BadParameter("no such track, or it has no audio", param_hint="TRACK_ID")
        asset_id = track.asset_id
    made = renditions.make_all_now(runtime.sessions, MediaStore(runtime.config.media_path), asset_id)
    for job in made:
        click.echo(f"{job.purpose}: {job.status}" + (f" ({job.error_code}: {job.error_detail})" if job.error_code else ""))
    if any(job.status != "done" for job in made):
        raise SystemExit(1)


@media_group.command("status", help="Media jobs by state.")
@with_appcontext
def status_cmd():
    from catalog.rendition_models import MediaJob

    with context.runtime().sessions() as session:
        rows = session.execute(select(MediaJob.status, func.count()).group_by(MediaJob.status)).all()
    counts = dict(rows)
    click.echo(" · ".join(f"{state} {counts.get(state, 0)}" for state in ("queued", "running", "retrying",
                                                                          "done", "failed")))


def register(group: click.Group) -> None:
    group.add_command(media_group)
