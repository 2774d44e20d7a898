"""Escrow: from the moment a notice is actioned, a track's new earnings are held for its case; when the case
ends they go to whoever is right.

Routing (`routes_for`, `payee_account_for`): every place that credits a track's payees (the ad flush, the
key-mode pool and the subscriber pools at close, sales) asks where each payee's share goes. A track with a case in a holding state
(disabled, countered) credits `liabilities:payee:{id}:held`; a track whose case was upheld and which stays
down credits the claimant's payable (the claimant is a payee); otherwise the payee's payable. The postings
keep their ref `track:{id}` (per-track earnings read it) and a track has at most one open case, so a track's
held balance is its open case's; the settlement entry names the case (metadata `case_id`).

Settling (`settle_case`): the track's held balance per payee and currency is moved in one balanced entry:
Dr each payee's held; Cr the same payee's payable (rejected, withdrawn, restored: "split as earned", since
the held credits were already split by the split sheet) or Cr the claimant's payable (upheld). The
idempotency key names the case and the cumulative amount ever settled from the track's held postings, so
settling the same balance twice is one entry, and a late credit (a flush batch routed before the case ended)
is settled by the next call without a micro moving twice. A refund or dispute of a held sale after the case
ended debits the held account (the sale's posting); the next settlement takes it back from where the money
went (the payees' or the claimant's payable). Payout drafting reads payable accounts only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from catalog.models import Payee
from ledger.accounts import payee_held, payee_payable
from ledger.services import Entry, Posting, post
from rights.models import HOLDING_STATES, Case, Notice


@dataclass(frozen=True)
class Route:
    """Where a held track's earnings go while (or after) its case stands."""

    case_id: int
    claimant_payee_id: int | None = None  # set once upheld: earnings go to the claimant

    def account(self, payee_id: int) -> str:
        if self.claimant_payee_id is not None:
            return payee_payable(self.claimant_payee_id)
        return payee_held(payee_id)


def routes_for(session: Session, track_ids: Iterable[int]) -> dict[int, Route]:
    """For each of these tracks whose earnings do not go to its payees' payable: the case's route."""
    ids = sorted({int(t) for t in track_ids if t is not None})
    if not ids:
        return {}
    rows = session.execute(text("""
        SELECT DISTINCT ON (c.track_id) c.track_id, c.id, c.state, c.claimant_payee_id
          FROM rights_cases c JOIN tracks t ON t.id = c.track_id
         WHERE c.track_id = ANY(:ids)
           AND (c.state IN ('disabled', 'countered')
                OR (c.state = 'upheld' AND t.status = 'taken_down' AND c.claimant_payee_id IS NOT NULL))
         ORDER BY c.track_id, (c.state <> 'upheld') DESC, c.id DESC"""), {"ids": ids}).all()
    return {r.track_id: Route(r.id, r.claimant_payee_id if r.state == "upheld" else None) for r in rows}


def payee_account_for(session: Session, track_id: int, payee_id: int, at: datetime | None = None
                      ) -> tuple[str, int | None]:
    """(account code, case id) to credit with `payee_id`'s share of `track_id`'s new earnings; the case id is
    None when nothing is held. Keep the posting's ref `track:{id}`."""
    route = routes_for(session, [track_id]).get(track_id)
    if route is None:
        return payee_payable(payee_id), None
    return route.account(payee_id), route.case_id


def claimant_payee(session: Session, notice: Notice) -> Payee:
    """The claimant as a payee (one per rights-holder account), created the first time a case pays them."""
    payee = session.scalar(select(Payee).where(Payee.user_id == notice.claimant_user_id, Payee.artist_id.is_(None),
                                               Payee.invited_by_artist_id.is_(None)).order_by(Payee.id).limit(1))
    if payee is None:
        payee = Payee(display_name=(notice.acting_for or notice.claimant_name)[:200], email=notice.claimant_email,
                      user_id=notice.claimant_user_id, accepted_at=notice.received_at)
        session.add(payee)
        session.flush()
    return payee


HELD_PATTERN = "liabilities:payee:%:held"  # bound, not written into the SQL (":held" would read as a parameter)
HELD_BY_TRACK_SQL = """
    SELECT a.code, p.currency, sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint
      FROM ledger_accounts a JOIN ledger_postings p ON p.account_id = a.id
     WHERE a.code LIKE :held_pattern AND p.ref = :ref
     GROUP BY a.code, p.currency ORDER BY a.code, p.currency"""


def held_for_track(session: Session, track_id: int) -> dict[tuple[int, str], int]:
    """The track's held balance per (payee id, currency), in micros."""
    result = {}
    for code, currency, amount in session.execute(text(HELD_BY_TRACK_SQL), {"ref": f"track:{track_id}", "held_pattern": HELD_PATTERN}).all():
        if amount:
            result[(int(code.split(":")[2]), currency.strip())] = int(amount)
    return result


def held_by_case(session: Session, case_id: int) -> dict[tuple[int, str], int]:
    """What the case holds now: its track's held balance while the case is open (nothing once it ended)."""
    case = session.get(Case, case_id)
    if case is None or case.state not in HOLDING_STATES:
        return {}
    return held_for_track(session, case.track_id)


@dataclass(frozen=True)
class CaseMoney:
    held: dict[str, int]
    released_to_artist: dict[str, int]
    to_claimant: dict[str, int]


def case_money(session: Session, case_id: int) -> CaseMoney:
    """Per currency: held now, released to the track's payees, and paid to the claimant, for the case."""
    held: dict[str, int] = defaultdict(int)
    for (_, currency), amount in held_by_case(session, case_id).items():
        held[currency] += amount
    released: dict[str, int] = defaultdict(int)
    claimant: dict[str, int] = defaultdict(int)
    # What the case's settlements moved to payables, net (a refund after the release is taken back there).
    rows = session.execute(text("""
        SELECT e.metadata->>'to', p.currency,
               sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint
          FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id
          JOIN ledger_accounts a ON a.id = p.account_id
         WHERE (e.metadata->>'case_id') = :case AND e.metadata->>'event' = 'rights_escrow'
           AND a.code NOT LIKE :held_pattern
         GROUP BY 1, 2"""), {"case": str(case_id), "held_pattern": HELD_PATTERN}).all()
    for to, currency, amount in rows:
        if amount:
            (claimant if to == "claimant" else released)[currency.strip()] += int(amount)
    return CaseMoney(dict(held), dict(released), dict(claimant))


@dataclass(frozen=True)
class HeldLine:
    """One takedown case holding a payee's money: how much of it, from which sources, and where the case is."""

    case_id: int
    notice_id: int
    track_id: int
    track_title: str
    release_title: str
    currency: str
    held_micros: int  # this payee's part
    by_source: dict[str, int]  # the crediting entries' event (ad_flush, pool_distribution, sale, ...) -> micros
    state: str  # the case's state now
    deadline_label: str
    deadline_at: datetime | None
    money: CaseMoney  # the whole case, every payee of the track: held now, released, to the claimant


DEADLINES = {"disabled": "counter-notice by", "countered": "restored on (unless court action is reported)"}


def held_lines(session: Session, payee_id: int, *, currency: str | None = None,
               at: datetime | None = None) -> list[HeldLine]:
    """The takedown cases holding `payee_id`'s money at `at` (now when None), one line per case and currency.

    A settlement moves a track's whole held balance, so what a track holds is what moved on it after its
    last settlement (`rights_escrow` entry); the sources are those entries' events (a sale's refund there is
    a negative amount). The case is the one that was open at `at`
    (a track has at most one), shown with its state now (so a month's statement says where the money went)."""
    conditions, params = ["a.code = :code"], {"code": payee_held(payee_id)}
    if currency is not None:
        conditions.append("a.currency = :currency")
        params["currency"] = currency
    if at is not None:
        conditions.append("e.effective_at < :at")
        params["at"] = at
    rows = session.execute(text(f"""
        WITH held AS (
            SELECT p.ref, a.currency::text AS currency, p.credit, p.amount_micros, e.id AS entry_id,
                   coalesce(e.metadata->>'event', '') AS event
              FROM ledger_accounts a JOIN ledger_postings p ON p.account_id = a.id
              JOIN ledger_entries e ON e.id = p.entry_id
             WHERE {' AND '.join(conditions)} AND p.ref ~ '^track:[0-9]{{1,9}}$'
        ), settled AS (SELECT ref, currency, max(entry_id) AS entry_id FROM held
                        WHERE NOT credit AND event = 'rights_escrow' GROUP BY 1, 2)
        SELECT h.ref, h.currency, h.event,
               sum(CASE WHEN h.credit THEN h.amount_micros ELSE -h.amount_micros END)::bigint
          FROM held h LEFT JOIN settled s ON s.ref = h.ref AND s.currency = h.currency
         WHERE h.entry_id > coalesce(s.entry_id, 0)
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""), params).all()  # noqa: S608 - fixed fragments; values bound
    by_track: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for ref, cur, event, amount in rows:
        if amount:
            by_track[(int(ref[6:]), cur.strip())][event] = int(amount)
    nonzero = {key: sources for key, sources in by_track.items() if sum(sources.values())}
    if not nonzero:
        return []
    track_ids = sorted({track_id for track_id, _ in nonzero})
    cases = session.execute(text("""
        SELECT DISTINCT ON (c.track_id) c.track_id, c.id, c.notice_id, c.state, c.counter_deadline_at,
               c.restore_at, c.resolved_at, t.title, r.title
          FROM rights_cases c JOIN tracks t ON t.id = c.track_id JOIN releases r ON r.id = t.release_id
         WHERE c.track_id = ANY(:ids) AND c.actioned_at IS NOT NULL
           AND (CAST(:at AS timestamptz) IS NULL
                OR (c.actioned_at < CAST(:at AS timestamptz)
                    AND (c.resolved_at IS NULL OR c.resolved_at >= CAST(:at AS timestamptz))))
         ORDER BY c.track_id, (c.state IN ('disabled', 'countered')) DESC, c.id DESC"""),
                            {"ids": track_ids, "at": at}).all()
    case_of = {row[0]: row for row in cases}
    lines = []
    for (track_id, cur), sources in sorted(nonzero.items()):
        row = case_of.get(track_id)
        if row is None:  # pragma: no cover - held credits are routed only while a case holds the track
            continue
        _, case_id, notice_id, state, counter_deadline, restore_at, resolved_at, title, release = row
        deadline = {"disabled": counter_deadline, "countered": restore_at}.get(state, resolved_at)
        lines.append(HeldLine(case_id, notice_id, track_id, title, release, cur, sum(sources.values()),
                              dict(sources), state, DEADLINES.get(state, "ended"), deadline,
                              case_money(session, case_id)))
    return lines


def settle_case(session: Session, case: Case, *, to_claimant_payee_id: int | None, at: datetime,
                reason: str) -> int | None:
    """Move everything the case's track holds: to the claimant's payable (upheld) or back to each payee's
    payable. Returns the entry id (None when nothing is held). Idempotent (see the module docstring)."""
    held = held_for_track(session, case.track_id)
    if not held:
        return None
    ref = f"track:{case.track_id}"
    # A monotonic count of what ever left the track's held accounts or came back to them by a settlement;
    # with this settlement's size it names the entry (see the module docstring).
    settled_before = session.scalar(text("""
        SELECT coalesce(sum(p.amount_micros), 0)::bigint
          FROM ledger_accounts a JOIN ledger_postings p ON p.account_id = a.id
          JOIN ledger_entries e ON e.id = p.entry_id
         WHERE a.code LIKE :held_pattern AND p.ref = :ref
           AND (NOT p.credit OR e.metadata->>'event' = 'rights_escrow')"""),
                                    {"ref": ref, "held_pattern": HELD_PATTERN}) or 0
    postings: list[Posting] = []
    for (payee_id, currency), amount in sorted(held.items()):
        target = payee_payable(to_claimant_payee_id if to_claimant_payee_id is not None else payee_id)
        # Negative: a sale's refund or dispute reached the held account after the money had been settled;
        # it is taken back from where the money went (a payable may go negative, recouped from later earnings).
        held_side, target_side = ("debit", "credit") if amount > 0 else ("credit", "debit")
        postings.append(Posting(payee_held(payee_id), held_side, abs(amount), currency, ref=ref))
        postings.append(Posting(target, target_side, abs(amount), currency, ref=ref))
    total = sum(abs(amount) for amount in held.values())
    outcome = "claimant" if to_claimant_payee_id is not None else "artist"
    return post(session, Entry(
        idempotency_key=f"rights-escrow:{case.id}:{settled_before + total}",
        effective_at=at,
        description=(f"Takedown case {case.id} (notice {case.notice_id}): held earnings "
                     + ("paid to the claimant" if outcome == "claimant" else "released to the track's payees")
                     + f" ({reason})"),
        postings=postings,
        metadata={"event": "rights_escrow", "case_id": case.id, "notice_id": case.notice_id, "to": outcome,
                  "track_id": case.track_id}))


RESIDUAL_DAYS = 180  # a sale can be disputed for 120 days after it; a refund by finance comes at any time


def settle_residuals(session: Session, *, at: datetime, limit: int = 1000) -> int:
    """Settle what reached a track's held accounts after its case ended, the same way the case went: credits
    of a flush batch routed while the case was open and committed after it closed, or a refund or dispute of
    a sale the case held (taken back from where the money went). Cases that ended in the last
    `RESIDUAL_DAYS`, the most recent first, only those whose track's held balance is not zero (one query)."""
    rows = session.execute(text("""
        WITH ended AS (
            SELECT DISTINCT ON (c.track_id) c.id, c.track_id, c.resolved_at
              FROM rights_cases c
             WHERE c.state IN ('upheld', 'restored', 'withdrawn') AND c.resolved_at > :since
               AND NOT EXISTS (SELECT 1 FROM rights_cases o WHERE o.track_id = c.track_id
                                AND o.state IN ('disabled', 'countered'))
             ORDER BY c.track_id, c.resolved_at DESC
        ), unsettled AS (
            SELECT DISTINCT p.ref
              FROM ledger_accounts a JOIN ledger_postings p ON p.account_id = a.id
             WHERE a.code LIKE :held_pattern AND p.ref = ANY(SELECT 'track:' || track_id FROM ended)
             GROUP BY a.id, p.ref
            HAVING sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END) <> 0
        )
        SELECT e.id FROM ended e WHERE 'track:' || e.track_id IN (SELECT ref FROM unsettled)
         ORDER BY e.resolved_at DESC, e.id LIMIT :limit"""),
                           {"since": at - timedelta(days=RESIDUAL_DAYS), "limit": limit,
                            "held_pattern": HELD_PATTERN}).scalars().all()
    count = 0
    for case_id in rows:
        case = session.get(Case, case_id)
        payee_id = case.claimant_payee_id if case.state == "upheld" else None
        if settle_case(session, case, to_claimant_payee_id=payee_id, at=at, reason="late earnings") is not None:
            count += 1
    return count


def holding_track_ids(session: Session, track_ids: Iterable[int]) -> set[int]:
    ids = sorted(set(track_ids))
    if not ids:
        return set()
    return set(session.scalars(select(Case.track_id).where(Case.track_id.in_(ids), Case.state.in_(HOLDING_STATES))))


__all__ = ["Route", "routes_for", "payee_account_for", "claimant_payee", "held_by_case", "case_money",
           "CaseMoney", "HeldLine", "held_lines", "settle_case", "settle_residuals", "holding_track_ids", "held_for_track"]
