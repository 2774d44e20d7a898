"""Filing notices: validation that says exactly what is missing, idempotent filing, bulk CSV, and the reads
(the claimant's notices, the decision queue, overdue notices, the transparency figures).

A notice is validated in full before anything is written: every missing element (§512(c)(3)(A), DSA
Art. 16) and every target problem is collected, and the first error raised lists them all. Targets are
looked up in a handful of set-based queries whatever the number of works, so a bulk notice of 10,000 works
is validated in well under a second.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.models import ArtistMember
from core.clock import Clock
from core.jobs import send_mail_later
from core.mail import Message
from core.users import User
from rights.audit import record_event
from rights.errors import (
    IdempotencyConflict,
    NotAllowed,
    NoticeIncomplete,
    NoticeInvalid,
    ReferenceTooLarge,
    RightsNotFound,
)
from rights.models import OPEN_STATES, Case, Notice, NoticeWork
from rights.settings import RightsSettings

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TEXT = 5000


@dataclass(frozen=True)
class Target:
    track_id: int
    release_id: int
    artist_id: int
    whole_release: bool
    via: str = "named"  # or "fingerprint": matched from the work's reference recording by Chromaprint


@dataclass
class ValidWork:
    position: int
    title: str
    description: str
    locations: list
    reference_sha256: str | None
    targets: list[Target] = field(default_factory=list)


@dataclass
class ValidNotice:
    claimant: dict
    statements: dict
    signature: str
    works: list[ValidWork]
    content_hash: str

    @property
    def track_count(self) -> int:
        return sum(len(w.targets) for w in self.works)


def _text(value, max_len: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        return ""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", str(value)).strip()[:max_len]


def _missing(code: str, field_name: str, message: str) -> dict:
    return {"code": code, "field": field_name, "message": message}


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "on", "yes", "1"))


# --- parsing what a notice points at -------------------------------------------------------------------------
_PATHS = (
    (re.compile(r"/tracks/(\d{1,12})(?:/|$)"), "track"),
    (re.compile(r"/releases/(\d{1,12})(?:/|$)"), "release"),
)
_RELEASE_PAGE = re.compile(r"^/artists/([a-z0-9][a-z0-9-]{0,79})/([a-z0-9][a-z0-9-]{0,119})/?$")
_TRACK_FRAGMENT = re.compile(r"(?:^|[?&#])track[=-](\d{1,12})")


def parse_location(value) -> tuple[str, object] | None:
    """("track", id) | ("release", id) | ("release_slug", (artist, release[, track id])) | None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return ("track", value) if value > 0 else None
    raw = _text(value, 2000)
    if not raw:
        return None
    if re.fullmatch(r"\d{1,12}", raw):
        return "track", int(raw)
    match = re.fullmatch(r"(track|release):(\d{1,12})", raw.lower())
    if match:
        return match[1], int(match[2])
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https", "") or not parts.path:
        return None
    path = parts.path
    for pattern, kind in _PATHS:
        found = pattern.search(path)
        if found:
            return kind, int(found[1])
    page = _RELEASE_PAGE.match(path.lower())
    if page:
        track = _TRACK_FRAGMENT.search(f"?{parts.query}#{parts.fragment}")
        return "release_slug", (page[1], page[2], int(track[1]) if track else None)
    return None


# --- CSV -------------------------------------------------------------------------------------------------------
CSV_COLUMNS = ("title", "description", "tracks")


def parse_works_csv(data: str | bytes, *, max_rows: int = 20000) -> list[dict]:
    """Works from a CSV with a header row `title,description,tracks[,reference]`; tracks split on spaces or ';'.

    Raises NoticeInvalid(code="malformed_csv") listing each bad line; nothing is partly read."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise NoticeInvalid([{"code": "malformed_csv", "field": "csv", "line": 0,
                                  "message": "the CSV file is not UTF-8 text"}], code="malformed_csv") from exc
    data = data.lstrip("\ufeff")
    if "\x00" in data:
        raise NoticeInvalid([{"code": "malformed_csv", "field": "csv", "line": 0,
                              "message": "the CSV file contains binary data"}], code="malformed_csv")
    reader = csv.reader(io.StringIO(data))
    problems: list[dict] = []
    try:
        header = next(reader, None)
        if not header:
            raise NoticeInvalid([{"code": "malformed_csv", "field": "csv", "line": 1,
                                  "message": "the CSV file is empty; it needs a header row title,description,tracks"}],
                                code="malformed_csv")
        columns = [h.strip().lower() for h in header]
        absent = [c for c in CSV_COLUMNS if c not in columns]
        if absent:
            raise NoticeInvalid([{"code": "malformed_csv", "field": "csv", "line": 1,
                                  "message": f"the header row lacks the column(s) {', '.join(absent)}"}],
                                code="malformed_csv")
        works = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                problems.append({"code": "malformed_csv", "field": f"csv line {line}", "line": line,
                                 "message": f"line {line} has {len(row)} fields where the header has {len(columns)}"})
                continue
            values = dict(zip(columns, row, strict=True))
            work = {"title": values["title"], "description": values["description"],
                    "tracks": [t for t in re.split(r"[\s;]+", values["tracks"].strip()) if t]}
            if values.get("reference"):
                work["reference"] = values["reference"].strip()
            works.append(work)
            if len(works) > max_rows:
                raise NoticeInvalid([{"code": "too_many_works", "field": "csv", "line": line,
                                      "message": f"a notice may name at most {max_rows} works"}],
                                    code="malformed_csv")
    except csv.Error as exc:
        problems.append({"code": "malformed_csv", "field": "csv", "line": reader.line_num,
                         "message": f"line {reader.line_num}: {exc}"})
    if problems:
        raise NoticeInvalid(problems, code="malformed_csv")
    if not works:
        raise NoticeInvalid([{"code": "malformed_csv", "field": "csv", "line": 2,
                              "message": "the CSV file has a header but no works"}], code="malformed_csv")
    return works


# --- validation ---------------------------------------------------------------------------------------------
def _elements(payload: Mapping) -> tuple[dict, dict, str, list, list[dict]]:
    missing: list[dict] = []
    claimant = payload.get("claimant") if isinstance(payload.get("claimant"), Mapping) else {}
    contact = {k: _text(claimant.get(k), 200 if k != "address" else 1000)
               for k in ("name", "email", "address", "phone", "acting_for")}
    if not contact["name"]:
        missing.append(_missing("missing_claimant_name", "claimant.name",
                                "the name of the claimant (the rights holder or their agent)"))
    if not contact["email"]:
        missing.append(_missing("missing_claimant_email", "claimant.email", "an email address to reach the claimant"))
    elif not EMAIL_RE.match(contact["email"]) or len(contact["email"]) > 320:
        missing.append(_missing("invalid_claimant_email", "claimant.email",
                                "the claimant's email address is not a valid address"))
    if not contact["address"] and not contact["phone"]:
        missing.append(_missing("missing_claimant_contact", "claimant.address",
                                "a postal address or telephone number of the claimant (§512(c)(3)(A)(iv))"))
    statements = payload.get("statements") if isinstance(payload.get("statements"), Mapping) else {}
    checks = (("good_faith", "missing_good_faith_statement",
               "the statement of a good-faith belief that the use is not authorised (§512(c)(3)(A)(v))"),
              ("accurate", "missing_accuracy_statement",
               "the statement that the information in the notice is accurate (§512(c)(3)(A)(vi), DSA Art. 16(2)(d))"),
              ("authorized", "missing_authority_statement",
               "the statement, under penalty of perjury, that the claimant is authorised to act for the owner "
               "(§512(c)(3)(A)(vi))"))
    for key, code, message in checks:
        if not _truthy(statements.get(key)):
            missing.append(_missing(code, f"statements.{key}", message))
    signature = _text(payload.get("signature"), 200)
    if not signature:
        missing.append(_missing("missing_signature", "signature",
                                "a physical or electronic signature (the claimant's full name) (§512(c)(3)(A)(i))"))
    works = payload.get("works")
    if not isinstance(works, list) or not works:
        missing.append(_missing("missing_works", "works", "at least one copyrighted work and the tracks that infringe it"))
        works = []
    return contact, {k: _truthy(statements.get(k)) for k, _, _ in checks}, signature, works, missing


def validate_notice(session: Session, claimant: User, payload: Mapping, *, settings: RightsSettings,
                    references: Mapping[str, Path] | None = None, now: datetime | None = None) -> ValidNotice:
    """Everything a notice needs, checked; nothing is written. Raises NoticeIncomplete (missing elements, all
    of them) or NoticeInvalid (targets that cannot be named, all of them)."""
    if not isinstance(payload, Mapping):
        raise NoticeIncomplete([_missing("missing_works", "works", "the notice is empty")])
    contact, statements, signature, works_in, missing = _elements(payload)
    if len(works_in) > settings.max_works:
        raise NoticeInvalid([{"code": "too_many_works", "field": "works",
                              "message": f"a notice may name at most {settings.max_works} works; split it"}])
    works: list[ValidWork] = []
    problems: list[dict] = []
    references = references or {}
    for index, raw in enumerate(works_in):
        where = f"works[{index}]"
        raw = raw if isinstance(raw, Mapping) else {}
        title, description = _text(raw.get("title"), 300), _text(raw.get("description"))
        if not title:
            missing.append(_missing("missing_work_title", f"{where}.title",
                                    f"work {index + 1}: the title of the copyrighted work (§512(c)(3)(A)(ii))"))
        if not description:
            missing.append(_missing("missing_work_description", f"{where}.description",
                                    f"work {index + 1}: an explanation of why the tracks infringe it (DSA Art. 16(2)(a))"))
        locations = raw.get("tracks")
        if isinstance(locations, str | int):
            locations = [t for t in re.split(r"[\s;,]+", str(locations)) if t]
        if not isinstance(locations, list):
            locations = []
        reference = _text(raw.get("reference"), 200) or None
        if not locations and not reference:
            missing.append(_missing("missing_work_tracks", f"{where}.tracks",
                                    f"work {index + 1}: the Ninety tracks or releases (URL or id), or a reference "
                                    "audio file (§512(c)(3)(A)(iii), DSA Art. 16(2)(b))"))
        works.append(ValidWork(position=index + 1, title=title, description=description,
                               locations=[loc if isinstance(loc, int) else _text(loc, 2000) for loc in locations],
                               reference_sha256=None))
        if reference is not None and reference not in references:
            problems.append({"code": "unknown_reference", "field": f"{where}.reference",
                             "message": f"work {index + 1}: the reference file {reference!r} was not attached"})
    if missing:
        raise NoticeIncomplete(missing)
    _resolve_targets(session, claimant, works, works_in, references, settings, problems, now)
    if problems:
        raise NoticeInvalid(problems)
    canonical = json.dumps({"claimant": contact, "statements": statements, "signature": signature,
                            "works": [[w.title, w.description, [str(x) for x in w.locations], w.reference_sha256]
                                      for w in works]}, sort_keys=True)
    return ValidNotice(claimant=contact, statements=statements, signature=signature, works=works,
                       content_hash=hashlib.sha256(canonical.encode()).hexdigest())


def _resolve_targets(session, claimant, works, works_in, references, settings, problems, now) -> None:
    parsed: list[list[tuple]] = []
    track_ids: set[int] = set()
    release_ids: set[int] = set()
    slugs: set[tuple[str, str]] = set()
    for work in works:
        items = []
        for loc in work.locations:
            target = parse_location(loc)
            if target is None:
                problems.append({"code": "invalid_track_reference", "field": f"works[{work.position - 1}].tracks",
                                 "message": f"work {work.position}: {str(loc)[:200]!r} is not a Ninety track or "
                                            "release URL or id"})
                continue
            kind, value = target
            if kind == "track":
                track_ids.add(value)
            elif kind == "release":
                release_ids.add(value)
            else:
                slugs.add(value[:2])
                if value[2] is not None:
                    track_ids.add(value[2])
            items.append((loc, target))
        parsed.append(items)
    # References: fingerprint each attached file and find the tracks with the same recording.
    matched_by_work: dict[int, list[int]] = {}
    for work, raw in zip(works, works_in, strict=True):
        name = _text(raw.get("reference"), 200) if isinstance(raw, Mapping) else ""
        if not name or name not in references:
            continue
        from rights import staydown

        path = Path(references[name])
        size = path.stat().st_size if path.exists() else 0
        if size > settings.max_reference_bytes:
            raise ReferenceTooLarge(f"The reference file {name!r} is {size // (1024 * 1024)} MB; the limit is "
                                    f"{settings.max_reference_bytes // (1024 * 1024)} MB.",
                                    field=f"works[{work.position - 1}].reference")
        try:
            sha256, found = staydown.match_reference(session, path)
        except staydown.FingerprintError as exc:
            problems.append({"code": "reference_unreadable", "field": f"works[{work.position - 1}].reference",
                             "message": f"work {work.position}: the reference file {name!r} is not readable audio "
                                        f"({exc.message})"})
            continue
        work.reference_sha256 = sha256
        if not found:
            problems.append({"code": "reference_no_match", "field": f"works[{work.position - 1}].reference",
                             "message": f"work {work.position}: no Ninety track matches the reference file {name!r}"})
        matched_by_work[work.position] = found
        track_ids.update(found)
    tracks = _track_rows(session, track_ids=track_ids, release_ids=release_ids, slugs=slugs, now=now)
    by_track = {row.track_id: row for row in tracks}
    by_release: dict[int, list] = {}
    by_slug: dict[tuple[str, str], int] = {}
    for row in tracks:
        by_release.setdefault(row.release_id, []).append(row)
        by_slug[(row.artist_slug, row.release_slug)] = row.release_id
    own_artists = set(session.scalars(select(ArtistMember.artist_id).where(ArtistMember.user_id == claimant.id)))
    under_notice = dict(session.execute(
        select(Case.track_id, Case.notice_id).where(Case.track_id.in_([r.track_id for r in tracks]),
                                                    Case.state.in_(OPEN_STATES))).all()) if tracks else {}
    seen: set[int] = set()
    for work, items in zip(works, parsed, strict=True):
        where = f"works[{work.position - 1}].tracks"
        candidates: list[tuple[object, list, bool, str]] = []
        for loc, (kind, value) in items:
            if kind == "track":
                rows = [by_track[value]] if value in by_track else []
                whole = False
                if not rows:
                    problems.append({"code": "unknown_track", "field": where,
                                     "message": f"work {work.position}: there is no public Ninety track {loc!r}"})
                    continue
            else:
                release_id = value if kind == "release" else by_slug.get(value[:2])
                track_id = value[2] if kind == "release_slug" else None
                rows = by_release.get(release_id, []) if release_id is not None else []
                if track_id is not None:
                    rows = [r for r in rows if r.track_id == track_id]
                whole = track_id is None
                if not rows:
                    problems.append({"code": "unknown_release", "field": where,
                                     "message": f"work {work.position}: there is no public Ninety release {loc!r}"})
                    continue
            candidates.append((loc, rows, whole, "named"))
        for track_id in matched_by_work.get(work.position, []):
            if track_id in by_track:
                candidates.append((f"reference:{track_id}", [by_track[track_id]], False, "fingerprint"))
        for loc, rows, whole, via in candidates:
            for row in rows:
                if row.track_id in seen:
                    continue
                if row.artist_id in own_artists:
                    problems.append({"code": "own_track", "field": where,
                                     "message": f"work {work.position}: {row.title!r} is a track of your own artist "
                                                "profile; withdraw it from the studio instead"})
                elif row.unavailable:
                    problems.append({"code": "track_unavailable", "field": where,
                                     "message": f"work {work.position}: {row.title!r} ({loc}) is already disabled"})
                elif row.track_id in under_notice:
                    problems.append({"code": "track_under_notice", "field": where,
                                     "message": f"work {work.position}: {row.title!r} ({loc}) is already under "
                                                f"notice {under_notice[row.track_id]}"})
                else:
                    seen.add(row.track_id)
                    work.targets.append(Target(row.track_id, row.release_id, row.artist_id, whole, via))


def _track_rows(session, *, track_ids, release_ids, slugs, now):
    if not (track_ids or release_ids or slugs):
        return []
    conditions, params = [], {"now": now}
    if track_ids:
        conditions.append("t.id = ANY(:track_ids)")
        params["track_ids"] = sorted(track_ids)
    if release_ids:
        conditions.append("r.id = ANY(:release_ids)")
        params["release_ids"] = sorted(release_ids)
    if slugs:
        conditions.append("(a.slug, r.slug) IN (SELECT * FROM unnest(CAST(:artist_slugs AS text[]), "
                          "CAST(:release_slugs AS text[])))")
        params["artist_slugs"] = [s[0] for s in sorted(slugs)]
        params["release_slugs"] = [s[1] for s in sorted(slugs)]
    # Public tracks (published, or a due scheduled release's) and taken-down ones (to say "already disabled").
    sql = f"""
        SELECT t.id AS track_id, t.release_id, r.artist_id, t.title, a.slug AS artist_slug, r.slug AS release_slug,
               (t.status = 'taken_down' OR r.status = 'taken_down') AS unavailable
          FROM tracks t JOIN releases r ON r.id = t.release_id JOIN artists a ON a.id = r.artist_id
         WHERE ({' OR '.join(conditions)})
           AND (t.status = 'taken_down' OR r.status = 'taken_down'
                OR (t.status = 'published' AND r.status = 'published')
                OR (t.status = 'draft' AND r.status = 'scheduled' AND r.publish_at <= CAST(:now AS timestamptz)))
         ORDER BY t.release_id, t.position, t.id"""  # noqa: S608 - fixed fragments only; values are bound
    return session.execute(text(sql), params).all()


# --- filing -------------------------------------------------------------------------------------------------
def file_notice(session: Session, claimant: User, payload: Mapping, *, clock: Clock, settings: RightsSettings,
                idempotency_key: str | None = None, references: Mapping[str, Path] | None = None,
                source: str = "api") -> Notice:
    """Validate and record a notice (its works, one pending case per track, the "received" audit row) and
    confirm receipt to the claimant by email. The same claimant and Idempotency-Key return the same notice;
    the same key for different content is refused. Never commits."""
    if not claimant.has_role("rights_holder", "admin"):
        raise NotAllowed("Only rights holders can file notices; ask for the rights holder role.",
                         code="not_rights_holder")
    key = _text(idempotency_key, 200) or None
    if key is not None:
        existing = session.scalar(select(Notice).where(Notice.claimant_user_id == claimant.id,
                                                       Notice.idempotency_key == key))
        if existing is not None:
            return _same_or_conflict(session, existing, claimant, payload, settings, references, clock)
    now = clock.now()
    valid = validate_notice(session, claimant, payload, settings=settings, references=references, now=now)
    scope = session.begin_nested()
    try:
        notice = _insert(session, claimant, valid, now=now, key=key, source=source, settings=settings)
    except IntegrityError as exc:
        scope.rollback()
        if key is not None:  # a concurrent request with the same key won the race
            existing = session.scalar(select(Notice).where(Notice.claimant_user_id == claimant.id,
                                                           Notice.idempotency_key == key))
            if existing is not None:
                return _same_or_conflict(session, existing, claimant, payload, settings, references, clock)
        raise NoticeInvalid([{"code": "track_under_notice", "field": "works",
                              "message": "a track of this notice was put under another notice at the same time"}]
                            ) from exc
    scope.commit()
    _mail_receipt(session, notice, valid)
    return notice


def _same_or_conflict(session, existing, claimant, payload, settings, references, clock) -> Notice:
    contact, statements, signature, works_in, _ = _elements(payload if isinstance(payload, Mapping) else {})
    works = [[_text(w.get("title"), 300), _text(w.get("description"))] for w in works_in if isinstance(w, Mapping)]
    stored = [[w.title, w.description] for w in existing.works]
    if works != stored or contact["email"] != existing.claimant_email or signature != existing.signature:
        raise IdempotencyConflict("This Idempotency-Key was already used for a different notice "
                                  f"(notice {existing.id}); use a new key for a new notice.", notice_id=existing.id)
    return existing


def _insert(session, claimant, valid: ValidNotice, *, now, key, source, settings) -> Notice:
    notice = Notice(claimant_user_id=claimant.id, claimant_name=valid.claimant["name"],
                    claimant_email=valid.claimant["email"], claimant_address=valid.claimant["address"],
                    claimant_phone=valid.claimant["phone"], acting_for=valid.claimant["acting_for"],
                    statement_good_faith=valid.statements["good_faith"],
                    statement_accurate=valid.statements["accurate"],
                    statement_authorized=valid.statements["authorized"], signature=valid.signature,
                    source=source, idempotency_key=key, content_hash=valid.content_hash, received_at=now,
                    deadline_at=now + timedelta(hours=settings.decision_hours), status="received")
    session.add(notice)
    session.flush()
    work_ids = session.execute(insert(NoticeWork).returning(NoticeWork.id, sort_by_parameter_order=True), [
        {"notice_id": notice.id, "position": w.position, "title": w.title, "description": w.description,
         "locations": [str(x) for x in w.locations], "reference_sha256": w.reference_sha256}
        for w in valid.works]).scalars().all()
    rows = [{"notice_id": notice.id, "work_id": work_id, "track_id": t.track_id, "release_id": t.release_id,
             "artist_id": t.artist_id, "via": t.via, "whole_release": t.whole_release, "state": "pending",
             "created_at": now}
            for work_id, w in zip(work_ids, valid.works, strict=True) for t in w.targets]
    if rows:
        session.execute(insert(Case), rows)
    record_event(session, notice_id=notice.id, at=now, actor=claimant, role="claimant", action="received",
                 reason=f"{len(valid.works)} work(s), {len(rows)} track(s)",
                 details={"source": source, "deadline_at": notice.deadline_at.isoformat()})
    session.flush()
    session.expire(notice, ["works", "cases"])
    return notice


def _mail_receipt(session, notice: Notice, valid: ValidNotice) -> None:
    send_mail_later(session, Message(
        to=notice.claimant_email, subject=f"Ninety received your notice {notice.id}",
        body=(f"We received your notice {notice.id} on {notice.received_at:%Y-%m-%d %H:%M} UTC: "
              f"{len(valid.works)} work(s) naming {valid.track_count} track(s).\n\n"
              f"It will be decided by {notice.deadline_at:%Y-%m-%d %H:%M} UTC. You can follow it under "
              f"Rights > Notices, where every step of the case is listed.\n")))


# --- reads ----------------------------------------------------------------------------------------------------
def get_notice(session: Session, notice_id: int, user: User | None) -> Notice:
    """The notice, for its claimant or an admin; anyone else is told there is no such notice."""
    notice = session.get(Notice, notice_id) if isinstance(notice_id, int) and 0 < notice_id < 2**31 else None
    if notice is None or user is None or not (notice.claimant_user_id == user.id or user.has_role("admin")):
        raise RightsNotFound("There is no such notice.", code="notice_not_found")
    return notice


def notices_for_claimant(session: Session, user_id: int, *, limit: int = 100) -> list[Notice]:
    return list(session.scalars(select(Notice).where(Notice.claimant_user_id == user_id)
                                .order_by(Notice.id.desc()).limit(limit)))


def decision_queue(session: Session, *, now: datetime, limit: int = 100) -> list[Notice]:
    """Undecided notices, the nearest deadline first (the partial index on undecided deadlines)."""
    return list(session.scalars(select(Notice).where(Notice.decided_at.is_(None))
                                .order_by(Notice.deadline_at, Notice.id).limit(limit)))


def overdue_notices(session: Session, *, now: datetime, limit: int = 1000) -> list[Notice]:
    """Undecided notices whose decision deadline has passed, the most overdue first."""
    return list(session.scalars(select(Notice).where(Notice.decided_at.is_(None), Notice.deadline_at < now)
                                .order_by(Notice.deadline_at, Notice.id).limit(limit)))


def overdue_count(session: Session, *, now: datetime) -> int:
    return session.scalar(select(func.count()).select_from(Notice)
                          .where(Notice.decided_at.is_(None), Notice.deadline_at < now)) or 0


def time_left(notice: Notice, now: datetime) -> timedelta:
    return notice.deadline_at - now


@dataclass(frozen=True)
class MonthStats:
    month: str
    received: int
    actioned: int
    rejected: int
    median_decision_s: float | None
    max_decision_s: float | None


def transparency(session: Session, *, now: datetime, months: int = 12) -> list[MonthStats]:
    """Per month of receipt: notices received, actioned, rejected, median and maximum time to decision (a
    decision is a person's: a notice its claimant withdrew before anyone decided it counts as received only)."""
    start = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=31 * (months - 1))
             ).replace(day=1)
    rows = session.execute(text("""
        SELECT to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*) AS received,
               count(*) FILTER (WHERE status IN ('actioned', 'withdrawn') AND decided_by_user_id IS NOT NULL)
                   AS actioned,
               count(*) FILTER (WHERE status = 'rejected') AS rejected,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - received_at))
                   FILTER (WHERE decided_by_user_id IS NOT NULL) AS median_s,
               max(extract(epoch FROM decided_at - received_at)) FILTER (WHERE decided_by_user_id IS NOT NULL)
                   AS max_s
          FROM rights_notices WHERE received_at >= :start
         GROUP BY 1 ORDER BY 1 DESC"""), {"start": start}).all()
    return [MonthStats(r.month, r.received, r.actioned, r.rejected,
                       float(r.median_s) if r.median_s is not None else None,
                       float(r.max_s) if r.max_s is not None else None) for r in rows]


__all__ = ["Target", "ValidWork", "ValidNotice", "MonthStats", "parse_location", "parse_works_csv",
           "validate_notice", "file_notice", "get_notice", "notices_for_claimant", "decision_queue",
           "overdue_notices", "overdue_count", "time_left", "transparency"]
