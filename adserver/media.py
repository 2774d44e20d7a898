"""Creative files: checked by content (not by name), stored content-addressed by SHA-256 under the media root."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from adserver.errors import CreativeInvalid

IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
AUDIO_MIMES = {"MP3": "audio/mpeg", "OggVorbis": "audio/ogg", "OggOpus": "audio/ogg", "WAVE": "audio/wav",
               "FLAC": "audio/flac", "MP4": "audio/mp4"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
              "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/wav": "wav", "audio/flac": "flac", "audio/mp4": "m4a"}
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_AUDIO_BYTES = 20 * 1024 * 1024
MAX_AUDIO_MS = 60_000
NAME_RE = re.compile(r"^[0-9a-f]{64}\.(png|jpg|gif|webp|mp3|ogg|wav|flac|m4a)$")


def image_mime(data: bytes) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise CreativeInvalid("The image is larger than 2 MB.", code="image_too_large")
    for signature, mime in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise CreativeInvalid("Upload a PNG, JPEG, GIF or WebP image.", code="unsupported_image_format")


def inspect_audio(data: bytes) -> tuple[str, int]:
    """(mime, duration in ms) of an audio spot, or CreativeInvalid."""
    import mutagen

    if len(data) > MAX_AUDIO_BYTES:
        raise CreativeInvalid("The audio file is larger than 20 MB.", code="audio_too_large")
    try:
        audio = mutagen.File(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - mutagen raises many kinds for broken files
        audio = None
    if audio is None or getattr(audio, "info", None) is None:
        raise CreativeInvalid("Upload an MP3, Ogg, WAV, FLAC or M4A audio file.", code="unsupported_audio_format")
    mime = AUDIO_MIMES.get(type(audio).__name__)
    duration_ms = int(round(float(getattr(audio.info, "length", 0) or 0) * 1000))
    if mime is None:
        raise CreativeInvalid("Upload an MP3, Ogg, WAV, FLAC or M4A audio file.", code="unsupported_audio_format")
    if not 0 < duration_ms <= MAX_AUDIO_MS:
        raise CreativeInvalid("An audio spot must last between a moment and 60 seconds.", code="bad_audio_duration")
    return mime, duration_ms


def store(media_root: Path, data: bytes, mime: str) -> str:
    """Write once under ads/<sha256>.<ext>; return the file name."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"{digest}.{EXTENSIONS[mime]}"
    folder = Path(media_root) / "ads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    return digest


def file_name(sha256: str, mime: str) -> str:
    return f"{sha256}.{EXTENSIONS[mime]}"


def path_for(media_root: Path, name: str) -> Path | None:
    """The stored file for a public name, refusing anything that is not a content address."""
    if not NAME_RE.match(name or ""):
        return None
    path = Path(media_root) / "ads" / name
    return path if path.is_file() else None
