"""The audit log: every transition of a notice or case is one row (who, when, what, why)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from core.users import User
from rights.models import CaseEvent


def record_event(session: Session, *, notice_id: int, at: datetime, actor: User | None, role: str, action: str,
                 reason: str = "", case_id: int | None = None, details: dict | None = None) -> None:
    session.execute(insert(CaseEvent), [{
        "notice_id": notice_id, "case_id": case_id, "at": at, "actor_user_id": actor.id if actor else None,
        "actor_role": role, "action": action, "reason": reason or "", "details": details or {}}])


def record_events(session: Session, rows: Iterable[dict], *, at: datetime, actor: User | None, role: str) -> None:
    """Many rows at once (a bulk notice's cases): each dict has notice_id, case_id, action and optional reason."""
    values = [{"notice_id": r["notice_id"], "case_id": r.get("case_id"), "at": at,
               "actor_user_id": actor.id if actor else None, "actor_role": role, "action": r["action"],
               "reason": r.get("reason", ""), "details": r.get("details", {})} for r in rows]
    if values:
        session.execute(insert(CaseEvent), values)
