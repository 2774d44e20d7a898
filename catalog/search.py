"""Discovery: full-text search (PostgreSQL tsvector, ranked) and browsing, paginated with keyset cursors.

A cursor is the last row's sort key, base64-encoded JSON; the next page is `WHERE (key) < (cursor)`, so
every page costs the same however deep the listener goes, and new rows never shift a page.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.errors import InvalidCatalogInput

# Public is decided at read time (GET handlers do not write): a scheduled release is public from its
# `publish_at` on, and its tracks are still 'draft' until the background step promotes it.
PUBLIC_RELEASE_SQL = "(r.status = 'published' OR (r.status = 'scheduled' AND r.publish_at <= :now))"
PUBLIC_TRACK_SQL = ("((r.status = 'published' AND t.status = 'published') OR "
                    "(r.status = 'scheduled' AND r.publish_at <= :now AND t.status = 'draft'))")
# A track has a search document only while its release is published (then the track is 'published') or
# scheduled (then 'draft'; refresh_search in catalog/services.py), so a published track needs no join.
SEARCHABLE_SQL = ("(t.status = 'published' OR (t.status = 'draft' AND EXISTS (SELECT 1 FROM releases r "
                  "WHERE r.id = t.release_id AND r.status = 'scheduled' AND r.publish_at <= :now)))")
WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_LIMIT = 100


@dataclass
class Page:
    items: list[dict]
    next_cursor: str | None


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, shape: tuple[type, ...]) -> list | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(shape):
            raise ValueError
        out = []
        for value, kind in zip(values, shape, strict=True):
            if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
                out.append(float(value))
            elif kind is int and isinstance(value, int) and not isinstance(value, bool):
                out.append(value)
            elif kind is str and isinstance(value, str) and len(value) < 100:
                out.append(value)
            else:
                raise ValueError
        return out
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidCatalogInput("The page cursor is not valid; start again from the first page.",
                                  code="invalid_cursor", field="cursor") from None


def _limit(limit: int | None) -> int:
    if limit is None:
        return 20
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
        raise InvalidCatalogInput(f"The page size must be between 1 and {MAX_LIMIT}.", code="invalid_limit",
                                  field="limit")
    return limit


def to_tsquery_text(query: str) -> str | None:
    """Words joined with AND, the last one as a prefix (search as you type); only word characters pass."""
    words = [w.lower() for w in WORD_RE.findall(query or "")][:12]
    words = [w[:60] for w in words if w.strip("_")]
    if not words:
        return None
    return " & ".join(words[:-1] + [words[-1] + ":*"])


TRACK_COLUMNS = """
    t.id AS track_id, t.title, t.position, a.id AS artist_id, a.name AS artist_name, a.slug AS artist_slug,
    r.id AS release_id, r.title AS release_title, r.slug AS release_slug, r.genre, r.tags,
    r.cover_sha256, aa.duration_ms
"""


def search_tracks(session: Session, query: str, *, now: datetime, limit: int | None = 20,
                  cursor: str | None = None) -> Page:
    """Public tracks (as of `now`) matching every word of `query` (titles, artists, releases, genres, tags),
    best first. Scheduled releases have their documents already; the time condition makes them public."""
    limit = _limit(limit)
    tsq = to_tsquery_text(query)
    if tsq is None:
        return Page([], None)
    after = decode_cursor(cursor, (float, int))
    params = {"q": tsq, "limit": limit + 1, "now": now}
    keyset = ""
    if after is not None:
        keyset = "WHERE (m.rank, m.id) < (CAST(:rank AS real), :id)"
        params.update(rank=after[0], id=after[1])
    sql = f"""
        WITH q AS (SELECT to_tsquery('simple', :q) AS query),
        m AS (
            SELECT t.id, ts_rank_cd(t.search_vector, q.query) AS rank
            FROM tracks t, q
            WHERE t.search_vector @@ q.query AND {SEARCHABLE_SQL}
        ),
        page AS (SELECT m.id, m.rank FROM m {keyset} ORDER BY m.rank DESC, m.id DESC LIMIT :limit)
        SELECT page.rank, {TRACK_COLUMNS}
        FROM page JOIN tracks t ON t.id = page.id JOIN releases r ON r.id = t.release_id
        JOIN artists a ON a.id = r.artist_id LEFT JOIN audio_assets aa ON aa.id = t.asset_id
        ORDER BY page.rank DESC, page.id DESC
    """  # noqa: S608 - only fixed fragments are interpolated; values are bound
    rows = [dict(row._mapping) for row in session.execute(text(sql), params)]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1]["rank"], rows[-1]["track_id"]])
    return Page(rows, next_cursor)


def browse_releases(session: Session, *, now: datetime, genre: str | None = None, artist_id: int | None = None,
                    limit: int | None = 20, cursor: str | None = None) -> Page:
    """Public releases (as of `now`), newest first; optionally of one genre or one artist.

    Published and due scheduled releases are picked by two index-ordered scans (`ix_releases_published`,
    `ix_releases_scheduled`) merged by date, so the first page stays an index read however big the catalog."""
    limit = _limit(limit)
    after = decode_cursor(cursor, (str, int))
    where = []
    params: dict = {"limit": limit + 1, "now": now}
    if genre:
        where.append("r.genre = :genre")
        params["genre"] = genre.lower()[:60]
    if artist_id is not None:
        where.append("r.artist_id = :artist_id")
        params["artist_id"] = artist_id
    if after is not None:
        params.update(after_at=after[0], after_id=after[1])

    def pick(status_sql: str, at: str) -> str:
        conditions = [status_sql, *where]
        if after is not None:
            conditions.append(f"(r.{at}, r.id) < (CAST(:after_at AS timestamptz), :after_id)")
        return (f"(SELECT r.id, r.{at} AS sort_at FROM releases r WHERE {' AND '.join(conditions)} "  # noqa: S608
                f"ORDER BY r.{at} DESC, r.id DESC LIMIT :limit)")  # fixed fragments only; values are bound

    sql = f"""
        WITH picked AS ({pick("r.status = 'published'", "published_at")} UNION ALL
                        {pick("r.status = 'scheduled' AND r.publish_at <= :now", "publish_at")})
        SELECT r.id AS release_id, r.title, r.slug AS release_slug, r.kind, r.genre, r.tags,
               p.sort_at AS published_at,
               r.release_date, r.cover_sha256, r.price_model, r.price_micros, r.min_price_micros, r.currency,
               a.id AS artist_id, a.name AS artist_name, a.slug AS artist_slug,
               (SELECT count(*) FROM tracks t WHERE t.release_id = r.id AND {PUBLIC_TRACK_SQL}) AS track_count
        FROM picked p JOIN releases r ON r.id = p.id JOIN artists a ON a.id = r.artist_id
        ORDER BY p.sort_at DESC, p.id DESC
        LIMIT :limit
    """  # noqa: S608 - only fixed fragments are interpolated; values are bound
    rows = [dict(row._mapping) for row in session.execute(text(sql), params)]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1]["published_at"].isoformat(), rows[-1]["release_id"]])
    return Page(rows, next_cursor)


def genres(session: Session, *, now: datetime, limit: int = 50) -> list[tuple[str, int]]:
    rows = session.execute(text(f"""
        SELECT r.genre, count(*) FROM releases r WHERE {PUBLIC_RELEASE_SQL} AND r.genre <> ''
        GROUP BY r.genre ORDER BY count(*) DESC, r.genre LIMIT :limit"""),  # noqa: S608 - fixed fragment
        {"limit": limit, "now": now})
    return [(g, n) for g, n in rows]


def browse_artists(session: Session, *, now: datetime, limit: int | None = 50, cursor: str | None = None) -> Page:
    """Artists with at least one public release (as of `now`), by name."""
    limit = _limit(limit)
    after = decode_cursor(cursor, (str, int))
    params: dict = {"limit": limit + 1, "now": now}
    keyset = ""
    if after is not None:
        keyset = "AND (lower(a.name), a.id) > (:after_name, :after_id)"
        params.update(after_name=after[0], after_id=after[1])
    sql = f"""
        SELECT a.id AS artist_id, a.name AS artist_name, a.slug AS artist_slug, a.location,
               lower(a.name) AS sort_name,
               (SELECT count(*) FROM releases r WHERE r.artist_id = a.id AND {PUBLIC_RELEASE_SQL}) AS release_count
        FROM artists a
        WHERE EXISTS (SELECT 1 FROM releases r WHERE r.artist_id = a.id AND {PUBLIC_RELEASE_SQL}) {keyset}
        ORDER BY lower(a.name), a.id
        LIMIT :limit
    """  # noqa: S608 - only fixed fragments are interpolated; values are bound
    rows = [dict(row._mapping) for row in session.execute(text(sql), params)]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1]["sort_name"], rows[-1]["artist_id"]])
    return Page(rows, next_cursor)
