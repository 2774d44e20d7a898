"""Rights' errors: each carries a stable code and says what to do; notices say exactly what is missing."""

from __future__ import annotations

from core.errors import NinetyError


class RightsError(NinetyError):
    code = "rights_error"
    status = 400
    title = "The notice could not be processed"


class RightsNotFound(RightsError):
    """Also what someone gets for a notice or case that is not theirs (no existence leak)."""

    code = "not_found"
    status = 404
    title = "Not found"


class NotAllowed(RightsError):
    code = "not_allowed"
    status = 403
    title = "Not allowed"


class NoticeIncomplete(RightsError):
    """Elements §512(c)(3)(A) or DSA Art. 16 require are missing; `details["missing"]` lists each one."""

    code = "notice_incomplete"
    status = 422
    title = "The notice is incomplete"

    def __init__(self, missing: list[dict]) -> None:
        names = "; ".join(m["message"] for m in missing[:5]) + ("; …" if len(missing) > 5 else "")
        super().__init__(f"The notice is missing {len(missing)} required element(s): {names}", missing=missing)


class NoticeInvalid(RightsError):
    """The notice names things it cannot (unknown or unavailable tracks, own tracks, unreadable references)."""

    code = "notice_invalid"
    status = 422
    title = "The notice cannot be accepted"

    def __init__(self, problems: list[dict], *, code: str | None = None, message: str | None = None) -> None:
        names = "; ".join(p["message"] for p in problems[:5]) + ("; …" if len(problems) > 5 else "")
        super().__init__(message or f"The notice cannot be accepted: {names}", code=code, problems=problems)


class ReferenceTooLarge(RightsError):
    code = "reference_too_large"
    status = 413
    title = "The reference file is too large"


class IdempotencyConflict(RightsError):
    code = "idempotency_conflict"
    status = 409
    title = "This Idempotency-Key was used for a different notice"


class CaseStateConflict(RightsError):
    code = "case_state"
    status = 409
    title = "The case is not in a state that allows this"


class CounterNoticeIncomplete(RightsError):
    code = "counter_notice_incomplete"
    status = 422
    title = "The counter-notice is incomplete"

    def __init__(self, missing: list[dict]) -> None:
        names = "; ".join(m["message"] for m in missing)
        super().__init__(f"The counter-notice is missing: {names}", missing=missing)


class AppealRefused(RightsError):
    code = "appeal_refused"
    status = 409
    title = "The appeal cannot be filed"


class StayDown(RightsError):
    """A re-upload of audio a notice took down."""

    code = "stay_down"
    status = 409
    title = "This audio was taken down after a notice"
