"""The media package's errors: what the decoder could not do, with a stable code and the decoder's words."""

from __future__ import annotations

from core.errors import NinetyError


class MediaError(NinetyError):
    code = "media_error"
    status = 422
    title = "The audio could not be processed"


class Undecodable(MediaError):
    """No decoder could open the file, or decoding broke off; `decoded_s` is how far it got."""

    code = "undecodable"

    def __init__(self, detail: str, *, decoded_s: float = 0.0) -> None:
        super().__init__(f"The audio cannot be decoded: {detail}", detail=detail, decoded_s=decoded_s)
        self.detail = detail
        self.decoded_s = decoded_s
