"""Audio inspection: what is this file, and can a listener play what we would deliver?

The container is recognised by its first bytes (never by the file name, which may lie); mutagen then
reads the header (what the file claims, its tags and cover), and FFmpeg decodes the audio from start to
end (`media.decoding.measure_audio`) to measure what it really holds. Accepted: MP3, FLAC, Ogg Vorbis,
Opus, AAC (ADTS/ADIF and M4A), ALAC, WAV, AIFF. Everything else is refused with a stable reason code and
a sentence a musician understands, as are corrupt files, files no decoder can play, and files whose
decoded length disagrees with their header by more than `LENGTH_SLACK_S` + `LENGTH_SLACK_RATIO`.
The recorded duration is the decoded one.
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import mutagen
from mutagen.aac import AAC
from mutagen.aiff import AIFF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomError, Atoms
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from catalog.errors import AudioRejected
from media.decoding import measure_audio
from media.errors import Undecodable

MAX_DURATION_S = 10 * 3600  # longer than ten hours is a lying header, not a record
MIN_DURATION_S = 0.05
HEAD_BYTES = 64 * 1024
OPUS_DECODE_RATE = 48_000  # Opus always decodes at 48 kHz; its header's "input rate" is only a hint
# How far the decoded length may stray from the header's before the header is called a lie. Decoders
# legitimately drop encoder delay and padding (MP3: up to ~2,257 samples, 0.28 s at 8 kHz; AAC priming:
# 1,024-2,112 samples, 0.26 s at 8 kHz; the corpus's largest honest gap is 0.08 s); the ratio covers
# headers that state lengths in coarse units. A cut-short or lying file misses far more than this.
LENGTH_SLACK_S = 0.5
LENGTH_SLACK_RATIO = 0.005

ACCEPTED_FORMATS = "MP3, FLAC, Ogg Vorbis, Opus, AAC/M4A, ALAC, WAV or AIFF"

# format -> (mime, extension)
FORMATS = {
    "mp3": ("audio/mpeg", "mp3"),
    "flac": ("audio/flac", "flac"),
    "vorbis": ("audio/ogg", "ogg"),
    "opus": ("audio/ogg", "opus"),
    "aac": ("audio/aac", "aac"),
    "m4a": ("audio/mp4", "m4a"),
    "alac": ("audio/mp4", "m4a"),
    "wav": ("audio/wav", "wav"),
    "aiff": ("audio/aiff", "aiff"),
}

# Recognised but not accepted: signature -> (reason code, what it is)
_NOT_ACCEPTED = [
    (b"MAC ", "unsupported_audio_format", "Monkey's Audio (APE)"),
    (b"MPCK", "unsupported_audio_format", "Musepack"),
    (b"MP+", "unsupported_audio_format", "Musepack"),
    (b"wvpk", "unsupported_audio_format", "WavPack"),
    (b"TTA1", "unsupported_audio_format", "TTA"),
    (b"OFR ", "unsupported_audio_format", "OptimFROG"),
    (b"tBaK", "unsupported_audio_format", "TAK"),
    (b"FRM8", "unsupported_audio_format", "DSD (DSDIFF)"),
    (b"DSD ", "unsupported_audio_format", "DSD (DSF)"),
    (b"MThd", "unsupported_audio_format", "MIDI (notes, not recorded sound)"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "unsupported_audio_format", "Windows Media Audio (WMA/ASF)"),
    (b"\x0b\x77", "unsupported_audio_format", "Dolby Digital (AC-3)"),
    (b"RF64", "unsupported_audio_format", "RF64"),
    (b"\x1a\x45\xdf\xa3", "video_not_accepted", "a Matroska/WebM file"),
    (b"\xff\xd8\xff", "not_audio", "a JPEG image"),
    (b"\x89PNG", "not_audio", "a PNG image"),
    (b"GIF8", "not_audio", "a GIF image"),
    (b"%PDF", "not_audio", "a PDF document"),
    (b"PK\x03\x04", "not_audio", "a ZIP archive"),
    (b"APETAGEX", "tag_only", "only an APE tag"),
]

MESSAGES = {
    "empty_file": "The file is empty. Export the track again and upload the new file.",
    "not_audio": "This is {what}, not an audio file. Upload the track as {accepted}.",
    "unsupported_audio_format": "{what} is not a format every listener can play. Convert the track to "
                                "{accepted} and upload it again.",
    "video_not_accepted": "This is {what} with video. Upload the audio only, as {accepted}.",
    "tag_only": "The file holds {what} and no audio. Export the track again and upload the new file.",
    "corrupt_audio": "The file looks like {what} but cannot be read ({detail}). It may be damaged or "
                     "cut short; export it again and upload the new file.",
    "undecodable_audio": "The file looks like {what}, but {problem}. It is probably damaged or cut short; "
                         "export the track again and upload the new file.",
    "duration_mismatch": "The file's header says the track lasts {claimed}, but its audio plays for "
                         "{decoded}. It is probably cut short or damaged, and players would show the wrong "
                         "length; export the track again and upload the new file.",
    "zero_duration": "The file has no playable audio (its duration is zero). Export the track again.",
    "absurd_duration": "The file claims to last {duration}, which cannot be right. Export the track again.",
    "duration_exceeds_size": "The file's header claims {duration} of audio but the file is too small to "
                             "hold it; it is probably cut short or damaged. Export the track again.",
}


def reject(code: str, **values) -> AudioRejected:
    values.setdefault("accepted", ACCEPTED_FORMATS)
    values.setdefault("what", "this file")
    values.setdefault("detail", "")
    message = MESSAGES[code].format(**values)
    return AudioRejected(message[0].upper() + message[1:], code=code)


@dataclass
class AudioInfo:
    format: str
    codec: str
    mime: str
    extension: str
    duration_s: float
    bitrate: int
    sample_rate: int
    channels: int
    bits_per_sample: int | None
    size_bytes: int
    tags: dict = field(default_factory=dict)
    cover: tuple[bytes, str] | None = None  # (image bytes, mime)
    # What the header claims, in seconds; None where the container states no length (ADTS/ADIF AAC, MP3
    # without a Xing/Info/VBRI frame count), whose "length" is only an estimate from the bitrate.
    header_duration_s: float | None = None
    # A fragmented MP4's header covers only the fragments before it: its length is a lower bound.
    header_is_lower_bound: bool = False

    @property
    def duration_ms(self) -> int:
        return int(round(self.duration_s * 1000))


def _human_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} hours"
    if seconds >= 60:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds:.2f} seconds"


def _skip_id3v2(head: bytes) -> int:
    """Offset of the first byte after any ID3v2 tags at the start of the file."""
    offset = 0
    while head[offset:offset + 3] == b"ID3" and len(head) >= offset + 10:
        flags = head[offset + 5]
        size_bytes = head[offset + 6:offset + 10]
        size = 0
        for b in size_bytes:
            size = (size << 7) | (b & 0x7F)
        offset += 10 + size + (10 if flags & 0x10 else 0)
    return offset


def sniff(path: Path, size: int) -> tuple[str, str]:
    """(kind, description): the container from its first bytes, whatever the file is called."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
        start = _skip_id3v2(head)
        if start >= len(head) and start > 0:
            if start >= size:
                return "tag_only", "only an ID3 tag"
            fh.seek(start)
            body = fh.read(64)
        else:
            body = head[start:start + 64]
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4", "an MP4/M4A file"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav", "a WAV file"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "an AVI file"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff", "an AIFF file"
    if head[:4] == b"OggS":
        page = head[:512]
        if b"\x80theora" in head:
            return "video", "an Ogg Theora file"
        if b"\x01vorbis" in page:
            return "vorbis", "an Ogg Vorbis file"
        if b"OpusHead" in page:
            return "opus", "an Opus file"
        if b"\x80theora" in page:
            return "video", "an Ogg Theora file"
        if b"Speex" in page:
            return "other:unsupported_audio_format", "Speex"
        if b"FLAC" in page:
            return "other:unsupported_audio_format", "FLAC inside Ogg"
        return "other:corrupt_audio", "an Ogg file"
    if body[:4] == b"fLaC":
        return "flac", "a FLAC file"
    if body[:4] == b"ADIF" or head[:4] == b"ADIF":
        return "aac", "an AAC file"
    for signature, code, what in _NOT_ACCEPTED:
        if head.startswith(signature) or (start and body.startswith(signature)):
            return f"other:{code}", what
    if len(body) >= 2 and body[0] == 0xFF:
        if body[1] & 0xF6 == 0xF0:
            return "aac", "an AAC (ADTS) file"
        if body[1] & 0xE0 == 0xE0 and (body[1] >> 1) & 0x3:
            return "mp3", "an MP3 file"
    if start > 0:
        if not body.strip(b"\x00"):
            return "tag_only", "only an ID3 tag"
        return "mp3", "an MP3 file"  # let mutagen search for the first frame after the tag
    return "other:not_audio", "a file of unknown type"


def _mp4_layout(path: Path) -> tuple[bool, bool]:
    """(has a video track, is fragmented): the MP4's atoms, read once."""
    with open(path, "rb") as fh:
        atoms = Atoms(fh)
        try:
            moov = atoms[b"moov"]
        except KeyError:
            return False, False
        fragmented = any(True for _ in moov.findall(b"mvex"))
        for trak in moov.findall(b"trak"):
            try:
                hdlr = trak[b"mdia", b"hdlr"]
            except KeyError:
                continue
            ok, data = hdlr.read(fh)
            if ok and data[8:12] == b"vide":
                return True, fragmented
    return False, fragmented


def inspect_file(path: Path | str) -> AudioInfo:
    """Inspect a stored file; raises AudioRejected (with a stable code) for anything we will not deliver."""
    path = Path(path)
    size = os.path.getsize(path)
    if size == 0:
        raise reject("empty_file")
    kind, what = sniff(path, size)
    if kind == "tag_only":
        raise reject("tag_only", what=what)
    if kind == "video":
        raise reject("video_not_accepted", what=what)
    if kind.startswith("other:"):
        raise reject(kind.split(":", 1)[1], what=what)
    try:
        info = _read(kind, path, size)
    except AudioRejected:
        raise
    except (mutagen.MutagenError, AtomError, ValueError, struct.error, EOFError, IndexError, KeyError,
            TypeError, OverflowError, ZeroDivisionError, UnicodeError) as exc:
        # AtomError (a cut-short MP4) is not a MutagenError; it is the same kind of damage.
        raise reject("corrupt_audio", what=what, detail=_detail(exc)) from None
    _check_plausible(info, what)
    _check_decodes(path, info, what)
    return info


def _slack_s(claimed_s: float) -> float:
    return LENGTH_SLACK_S + LENGTH_SLACK_RATIO * claimed_s


def lengths_agree(claimed_s: float, decoded_s: float, *, lower_bound: bool = False) -> bool:
    """Does the decoded length match the header's claim (within the documented slack)?"""
    slack = _slack_s(claimed_s)
    return decoded_s >= claimed_s - slack and (lower_bound or decoded_s <= claimed_s + slack)


def _check_decodes(path: Path, info: AudioInfo, what: str) -> None:
    """Decode the whole stream: refuse what FFmpeg cannot play or what disagrees with its header; then
    record what the decoder measured (the duration listeners will hear, at the rate it comes out at)."""
    claimed = info.header_duration_s
    strict = claimed is not None and not info.header_is_lower_bound
    stop_after = claimed + _slack_s(claimed) + 1.0 if strict else float(MAX_DURATION_S)
    try:
        decoded = measure_audio(path, stop_after_s=stop_after)
    except Undecodable as exc:
        problem = (f"its audio breaks off after {_human_duration(exc.decoded_s)}, so no player can play it "
                   "to the end" if exc.decoded_s else "no player can open its audio")
        refused = reject("undecodable_audio", what=what, problem=problem)
        refused.details["decoder"] = exc.detail  # FFmpeg's words, for support; the sentence is for people
        raise refused from None
    if not decoded.complete and not strict:
        raise reject("absurd_duration", duration=f"more than {_human_duration(decoded.seconds)}")
    if claimed is not None and (not decoded.complete or not lengths_agree(
            claimed, decoded.seconds, lower_bound=info.header_is_lower_bound)):
        played = _human_duration(decoded.seconds)
        raise reject("duration_mismatch", claimed=_human_duration(claimed),
                     decoded=played if decoded.complete else f"more than {played}")
    if decoded.seconds < MIN_DURATION_S:
        raise reject("zero_duration", what=what)
    info.duration_s = decoded.seconds
    info.sample_rate = info.sample_rate or decoded.sample_rate
    info.channels = info.channels or decoded.channels
    if info.format in ("vorbis", "opus"):
        info.bitrate = int(info.size_bytes * 8 / decoded.seconds)


def _detail(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def _read(kind: str, path: Path, size: int) -> AudioInfo:
    cover = None
    tags: dict = {}
    bits = None
    header_is_lower_bound = False
    if kind == "mp3":
        audio = MP3(path)
        fmt, codec = "mp3", f"mpeg{audio.info.version:g}-layer{audio.info.layer}"
        if audio.info.layer != 3:
            fmt = "mp3"
        tags, cover = _id3_tags(audio.tags)
    elif kind == "aac":
        audio = AAC(path)
        fmt, codec = "aac", "aac"
        try:
            tags, cover = _id3_tags(ID3(path))
        except mutagen.MutagenError:
            pass
    elif kind == "flac":
        audio = FLAC(path)
        fmt, codec = "flac", "flac"
        bits = audio.info.bits_per_sample
        tags = _vorbis_tags(audio.tags)
        if audio.pictures:
            cover = (audio.pictures[0].data, audio.pictures[0].mime or "image/jpeg")
    elif kind == "vorbis":
        audio = OggVorbis(path)
        fmt, codec = "vorbis", "vorbis"
        tags, cover = _vorbis_tags(audio.tags), _vorbis_cover(audio.tags)
    elif kind == "opus":
        audio = OggOpus(path)
        fmt, codec = "opus", "opus"
        tags, cover = _vorbis_tags(audio.tags), _vorbis_cover(audio.tags)
    elif kind == "mp4":
        has_video, header_is_lower_bound = _mp4_layout(path)
        if has_video:
            raise reject("video_not_accepted", what="an MP4 file")
        audio = MP4(path)
        codec = (audio.info.codec or "").lower()
        if codec.startswith("mp4a.40") or codec == "mp4a":
            fmt, codec = "m4a", "aac"
        elif codec == "alac":
            fmt = "alac"
            bits = getattr(audio.info, "bits_per_sample", None) or None
        else:
            raise reject("unsupported_audio_format", what=f"MP4 audio in the {codec or 'unknown'} codec")
        tags, cover = _mp4_tags(audio.tags)
    elif kind == "wav":
        audio = WAVE(path)
        fmt, codec = "wav", "pcm"
        bits = audio.info.bits_per_sample
        tags, cover = _id3_tags(audio.tags)
    elif kind == "aiff":
        audio = AIFF(path)
        fmt, codec = "aiff", "pcm"
        bits = audio.info.bits_per_sample
        tags, cover = _id3_tags(audio.tags)
    else:  # pragma: no cover - sniff only returns the kinds above
        raise reject("not_audio")
    info = audio.info
    mime, extension = FORMATS[fmt]
    bitrate = int(getattr(info, "bitrate", 0) or 0)
    if fmt in ("vorbis", "opus") and info.length:
        # Ogg headers carry a nominal rate; the length (from the last page) is what is reliable.
        bitrate = int(size * 8 / info.length)
    length = float(info.length or 0.0)
    # ADTS/ADIF state no length, nor does an MP3 without a frame count ("sketchy"): mutagen estimates it
    states_length = fmt != "aac" and not (fmt == "mp3" and getattr(info, "sketchy", True))
    rate = OPUS_DECODE_RATE if fmt == "opus" else int(getattr(info, "sample_rate", 0) or 0)
    return AudioInfo(format=fmt, codec=codec, mime=mime, extension=extension, duration_s=length,
                     bitrate=bitrate, sample_rate=rate, channels=int(getattr(info, "channels", 0) or 0),
                     bits_per_sample=bits, size_bytes=size, tags=tags, cover=cover,
                     header_duration_s=length if states_length else None,
                     header_is_lower_bound=header_is_lower_bound)


def _check_plausible(info: AudioInfo, what: str) -> None:
    seconds = info.duration_s
    if info.header_is_lower_bound and not seconds:
        return  # a fragmented MP4 with an empty header (as streaming encoders write): only decoding can tell
    if not seconds or seconds < MIN_DURATION_S or info.sample_rate <= 0 or info.channels <= 0:
        raise reject("zero_duration", what=what)
    if seconds > MAX_DURATION_S:
        raise reject("absurd_duration", duration=_human_duration(seconds))
    if info.codec == "pcm":
        needed = seconds * info.sample_rate * info.channels * (info.bits_per_sample or 8) / 8
        if needed > info.size_bytes * 1.02 + 4096:
            raise reject("duration_exceeds_size", duration=_human_duration(seconds))
    elif info.format in ("flac", "alac"):
        # Even silence compresses to some bytes per second; far below that, the sample count lies.
        if info.size_bytes * 8 / seconds < 400:
            raise reject("duration_exceeds_size", duration=_human_duration(seconds))
    else:
        if info.bitrate and seconds * info.bitrate / 8 > info.size_bytes * 1.5 + 16384:
            raise reject("duration_exceeds_size", duration=_human_duration(seconds))
        if info.size_bytes * 8 / seconds < 800:
            raise reject("duration_exceeds_size", duration=_human_duration(seconds))


# --- tags, for pre-filling the track form --------------------------------------------------------------
def _first(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    return str(value).strip()[:300] or None


def _track_number(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        value = value[0]
    text = str(value).split("/")[0].strip()
    return int(text) if text.isdigit() and 0 < int(text) < 10_000 else None


def _clean(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if v not in (None, "")}


def _id3_tags(tags) -> tuple[dict, tuple[bytes, str] | None]:
    if tags is None:
        return {}, None

    def text(frame_id):
        frames = tags.getall(frame_id) if hasattr(tags, "getall") else []
        return _first(frames[0].text) if frames and getattr(frames[0], "text", None) else None

    cover = None
    pictures = tags.getall("APIC") if hasattr(tags, "getall") else []
    if pictures:
        front = next((p for p in pictures if p.type == 3), pictures[0])
        cover = (front.data, front.mime or "image/jpeg")
    return _clean({"title": text("TIT2"), "artist": text("TPE1"), "album": text("TALB"),
                   "track_number": _track_number(text("TRCK")), "isrc": text("TSRC"),
                   "genre": text("TCON")}), cover


def _vorbis_tags(tags) -> dict:
    if tags is None:
        return {}

    def get(key):
        try:
            return _first(tags.get(key))
        except (KeyError, ValueError):
            return None

    return _clean({"title": get("title"), "artist": get("artist"), "album": get("album"),
                   "track_number": _track_number(get("tracknumber")), "isrc": get("isrc"),
                   "genre": get("genre")})


def _vorbis_cover(tags) -> tuple[bytes, str] | None:
    if tags is None:
        return None
    for raw in tags.get("metadata_block_picture", [])[:1]:
        try:
            picture = Picture(base64.b64decode(raw))
            return picture.data, picture.mime or "image/jpeg"
        except (ValueError, mutagen.MutagenError, struct.error):
            return None
    return None


def _mp4_tags(tags) -> tuple[dict, tuple[bytes, str] | None]:
    if tags is None:
        return {}, None
    track = tags.get("trkn")
    isrc = tags.get("----:com.apple.iTunes:ISRC")
    result = _clean({"title": _first(tags.get("\xa9nam")), "artist": _first(tags.get("\xa9ART")),
                     "album": _first(tags.get("\xa9alb")), "genre": _first(tags.get("\xa9gen")),
                     "track_number": _track_number(track[0] if track else None),
                     "isrc": bytes(isrc[0]).decode("utf-8", "replace").strip() if isrc else None})
    cover = None
    covers = tags.get("covr")
    if covers:
        from mutagen.mp4 import MP4Cover

        first = covers[0]
        cover = (bytes(first), "image/png" if first.imageformat == MP4Cover.FORMAT_PNG else "image/jpeg")
    return result, cover


def describe(info: AudioInfo) -> dict:
    """The facts recorded on the audio asset."""
    return {"format": info.format, "codec": info.codec, "duration_ms": info.duration_ms,
            "bitrate": info.bitrate, "sample_rate": info.sample_rate, "channels": info.channels,
            "bits_per_sample": info.bits_per_sample}



