"""Demo media: every seeded track gets its stream and preview copies, waveform and every download format
now, during seeding, so the demo plays and downloads in any format from the first page view.

The catalog seeder's uploads also queued the "streams" jobs (after its commit); when the worker picks them
up it finds the files made and only marks them done. Tracks are made in parallel, one process per core
(at most two), each process with its own database connections.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
import time

from catalog import renditions
from catalog.models import Track
from catalog.storage import MediaStore

ORDER = 25  # after the catalog (20), before what reads plays or downloads

_worker: dict = {}


def _init(sessions, media_path) -> None:
    # A forked child inherits its parent's signal handlers. A parent that catches SIGTERM to stop cleanly
    # (`ninety worker`'s stop_requested, the supervisor's SIG_IGN while it stops its children) would leave the
    # child deaf to the pool's terminate(), and the pool's exit would wait for it forever.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    engine = sessions.kw.get("bind")
    if engine is not None:
        engine.dispose(close=False)  # a forked process never shares its parent's connections
    _worker["sessions"], _worker["store"] = sessions, MediaStore(media_path)


def make_pool(processes: int, sessions, media_path):
    """A forked pool whose children start with the default SIGTERM and SIGINT. `_init` also takes the
    defaults back, but only once the child runs it: a terminate() arriving before then (a child still
    starting, on a busy machine) met the parent's handler and was shrugged off, and the pool's join waited
    forever. So the parent forks with the defaults in place and restores its own handlers right after (from
    the main thread; elsewhere, Python cannot set handlers and `_init` alone covers it)."""
    context = multiprocessing.get_context("fork")
    swap = threading.current_thread() is threading.main_thread()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)} if swap else {}
    try:
        for sig in saved:
            signal.signal(sig, signal.SIG_DFL)
        return context.Pool(processes, initializer=_init, initargs=(sessions, media_path))
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _make(asset_id: int) -> tuple[int, list[str]]:
    made = renditions.make_all_now(_worker["sessions"], _worker["store"], asset_id)
    return asset_id, [f"{job.purpose}:{job.status}:{job.error_code or ''}" for job in made]


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def seed(runtime, state: dict) -> None:
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    with runtime.sessions() as session:
        asset_ids = sorted({t.asset_id for t in session.query(Track).filter(Track.id.in_(state.get("tracks", [])))
                            if t.asset_id is not None})
    processes = max(1, min(2, os.cpu_count() or 1, len(asset_ids)))
    failures = []
    if processes == 1:
        _init(runtime.sessions, runtime.config.media_path)
        results = [_make(asset_id) for asset_id in asset_ids]
    else:
        runtime.engine.dispose()  # nothing pooled is inherited by the children
        with make_pool(processes, runtime.sessions, runtime.config.media_path) as pool:
            results = pool.map(_make, asset_ids)
            pool.close()  # the workers finish and exit; the with-block's terminate() then has nothing to kill
            pool.join()
    for asset_id, outcomes in results:
        failures += [f"asset {asset_id} {o}" for o in outcomes if ":done:" not in o]
    state["media_seconds"] = round(time.perf_counter() - started, 1)
    state["media_cpu_seconds"] = round(_cpu_seconds() - cpu_started, 1)
    if failures:
        raise RuntimeError("demo media not made: " + "; ".join(failures))
    print(f"  media for {len(asset_ids)} tracks (streams, previews, waveforms, "
          f"{len(renditions.DOWNLOAD_FORMATS)} download formats) in {state['media_seconds']} s "
          f"({state['media_cpu_seconds']} s of CPU on {processes} processes)")
