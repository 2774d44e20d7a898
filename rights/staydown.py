"""Stay-down: audio a notice took down does not come back, whether re-uploaded as the same bytes or re-encoded.

Every uploaded file is fingerprinted once (Chromaprint, `media.fingerprint`) and the fingerprint is kept by
SHA-256 (`rights_audio_fingerprints`), which is also what a notice's reference file is matched against.
When a case disables a track, its audio goes on the stay-down list (`rights_staydown`): its SHA-256 and
fingerprint, with a bottom-k sample of the fingerprint's codes under a GIN index. An upload is refused if
its SHA-256 is listed, or if a listed sample shares a code with the upload's fingerprint and the candidate's
bit-error rate against it is that of the same recording. Both lookups are index reads, so the check stays
flat as the list grows (bench/takedowns.py: 100,000 fingerprints on file).

An entry is lifted when its case ends in the track's favour (rejected, withdrawn, restored).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.models import AudioAsset, Track
from media.fingerprint import Fingerprint, FingerprintError, fingerprint_file, same_recording, sample
from rights.errors import StayDown
from rights.models import AudioFingerprint, Case
from rights.models import StayDown as StayDownRow

__all__ = ["FingerprintError", "screen_upload", "remember_fingerprint", "match_reference", "block_cases",
           "lift_cases", "fingerprint_asset"]

MAX_CANDIDATES = 50


def remember_fingerprint(session: Session, sha256: str, fp: Fingerprint) -> None:
    session.execute(pg_insert(AudioFingerprint).values(
        sha256=sha256, duration_ms=int(fp.duration_s * 1000), codes=list(fp.codes), sample=fp.sample,
    ).on_conflict_do_nothing(index_elements=["sha256"]))


def _stored(session: Session, sha256: str) -> list[int] | None:
    return session.scalar(select(AudioFingerprint.codes).where(AudioFingerprint.sha256 == sha256))


def screen_upload(session: Session, *, sha256: str, path: Path | str) -> None:
    """Refuse (StayDown) audio a standing notice took down; otherwise remember the upload's fingerprint.

    Same bytes are refused before any fingerprinting. Audio fpcalc cannot read is not refused here: the
    upload's own inspection decides whether it is audio at all."""
    row = session.execute(text("SELECT s.notice_id, s.case_id FROM rights_staydown s "
                               "WHERE s.active AND s.sha256 = :sha LIMIT 1"), {"sha": sha256}).first()
    if row is not None:
        _refuse(row.notice_id, row.case_id, "sha256")
    codes = _stored(session, sha256)
    if codes is None:
        try:
            fp = fingerprint_file(path)
        except FingerprintError:
            return
        codes = list(fp.codes)
        remember_fingerprint(session, sha256, fp)
    hit = _fingerprint_match(session, codes)
    if hit is not None:
        _refuse(hit[0], hit[1], "fingerprint")


def _refuse(notice_id: int, case_id: int, match: str) -> None:
    how = "the same file" if match == "sha256" else "the same recording"
    raise StayDown(f"This audio is {how} as a track taken down after notice {notice_id}; it cannot be uploaded "
                   "while that notice stands.", notice_id=notice_id, case_id=case_id, match=match)


# One GIN probe per code of the upload (`sample @> ARRAY[code]`): PostgreSQL estimates each well and uses the
# index, where a single `sample && codes` is guessed at thousands of rows and scanned (65 ms at 5,000 entries,
# against 1 ms this way).
def _candidates_sql(table: str, columns: str, extra: str = "") -> str:
    # No LIMIT here: with one, the planner walks the primary key instead of probing the index per code.
    return f"""
        SELECT DISTINCT {columns} FROM unnest(CAST(:codes AS integer[])) c(code)
          JOIN {table} s ON s.sample @> ARRAY[c.code] {extra}
    """  # noqa: S608 - fixed fragments only; values are bound


def _fingerprint_match(session: Session, codes: list[int]) -> tuple[int, int] | None:
    if not codes:
        return None
    candidates = session.execute(text(_candidates_sql("rights_staydown", "s.notice_id, s.case_id, s.codes",
                                                      "AND s.active AND s.codes IS NOT NULL")),
                                 {"codes": sorted(set(codes))}).all()[:MAX_CANDIDATES]
    for notice_id, case_id, stored in candidates:
        if same_recording(stored, codes):
            return notice_id, case_id
    return None


def match_reference(session: Session, path: Path) -> tuple[str, list[int]]:
    """(SHA-256 of the reference file, ids of tracks whose audio is the same recording)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    fp = fingerprint_file(path)
    codes = list(fp.codes)
    rows = session.execute(text(_candidates_sql("rights_audio_fingerprints", "s.sha256, s.codes")),
                           {"codes": sorted(set(codes))}).all()[:200]
    shas = [sha for sha, stored in rows if same_recording(stored, codes)]
    if not shas:
        return digest.hexdigest(), []
    track_ids = list(session.scalars(select(Track.id).join(AudioAsset, AudioAsset.id == Track.asset_id)
                                     .where(AudioAsset.sha256.in_(shas)).order_by(Track.id)))
    return digest.hexdigest(), track_ids


def fingerprint_asset(session: Session, sha256: str, path: Path) -> list[int] | None:
    """The stored fingerprint of an asset, computing it (once) from its file when missing."""
    codes = _stored(session, sha256)
    if codes is not None:
        return codes
    if not Path(path).exists():
        return None
    try:
        fp = fingerprint_file(path)
    except FingerprintError:
        return None
    remember_fingerprint(session, sha256, fp)
    return list(fp.codes)


def block_cases(session: Session, cases: list[Case], *, audio_path=None) -> None:
    """Put the audio of these (just disabled) cases' tracks on the stay-down list (set-based)."""
    if not cases:
        return
    rows = session.execute(text("""
        SELECT c.id AS case_id, c.notice_id, a.sha256, f.codes, f.sample
          FROM rights_cases c JOIN tracks t ON t.id = c.track_id JOIN audio_assets a ON a.id = t.asset_id
          LEFT JOIN rights_audio_fingerprints f ON f.sha256 = a.sha256
         WHERE c.id = ANY(:ids)"""), {"ids": [c.id for c in cases]}).all()
    values = []
    for row in rows:
        codes, sample_codes = row.codes, row.sample
        if codes is None and audio_path is not None:
            codes = fingerprint_asset(session, row.sha256, audio_path(row.sha256))
            sample_codes = sample(codes) if codes else None
        values.append({"case_id": row.case_id, "notice_id": row.notice_id, "sha256": row.sha256,
                       "codes": codes, "sample": sample_codes or [], "active": True})
    if values:
        session.execute(pg_insert(StayDownRow).on_conflict_do_nothing(index_elements=["case_id"]), values)


def lift_cases(session: Session, case_ids: list[int]) -> None:
    if case_ids:
        session.execute(update(StayDownRow).where(StayDownRow.case_id.in_(case_ids)).values(active=False))
