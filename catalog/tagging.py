"""Write clean tags with mutagen onto a copy of an audio file: every old tag removed, the catalog's added."""

from __future__ import annotations

import base64
from pathlib import Path

from mutagen.aiff import AIFF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TALB, TCON, TDRC, TIT2, TPE1, TRCK, TSRC, ID3NoHeaderError
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

VERSION = 1  # bump to invalidate cached tagged copies when the tag layout changes


def _track(values: dict) -> str | None:
    number = values.get("track_number")
    if not number:
        return None
    total = values.get("track_total")
    return f"{number}/{total}" if total else str(number)


def _id3_frames(values: dict, cover) -> list:
    frames = [TIT2(encoding=3, text=values["title"]), TPE1(encoding=3, text=values["artist"]),
              TALB(encoding=3, text=values["album"]),
              COMM(encoding=3, lang="eng", desc="", text=values["comment"])]
    if _track(values):
        frames.append(TRCK(encoding=3, text=_track(values)))
    if values.get("isrc"):
        frames.append(TSRC(encoding=3, text=values["isrc"]))
    if values.get("genre"):
        frames.append(TCON(encoding=3, text=values["genre"]))
    if values.get("date"):
        frames.append(TDRC(encoding=3, text=values["date"]))
    if cover:
        frames.append(APIC(encoding=3, mime=cover[1], type=3, desc="Cover", data=cover[0]))
    return frames


def _vorbis_comments(values: dict) -> dict[str, str]:
    comments = {"TITLE": values["title"], "ARTIST": values["artist"], "ALBUM": values["album"],
                "COMMENT": values["comment"]}
    if values.get("track_number"):
        comments["TRACKNUMBER"] = str(values["track_number"])
    if values.get("track_total"):
        comments["TRACKTOTAL"] = str(values["track_total"])
    for key in ("isrc", "genre", "date"):
        if values.get(key):
            comments[key.upper()] = values[key]
    return comments


def _picture(cover) -> Picture:
    picture = Picture()
    picture.type = 3
    picture.mime = cover[1]
    picture.desc = "Cover"
    picture.data = cover[0]
    return picture


def write_tags(path: Path, fmt: str, values: dict, cover: tuple[bytes, str] | None) -> None:
    if fmt == "mp3":
        audio = MP3(path)
        audio.delete()
        audio = MP3(path)
        audio.add_tags()
        for frame in _id3_frames(values, cover):
            audio.tags.add(frame)
        audio.save(v1=0)
    elif fmt in ("wav", "aiff"):
        cls = WAVE if fmt == "wav" else AIFF
        audio = cls(path)
        if audio.tags is not None:
            audio.delete()
            audio = cls(path)
        audio.add_tags()
        for frame in _id3_frames(values, cover):
            audio.tags.add(frame)
        audio.save()
    elif fmt == "aac":
        # Raw ADTS has no tag format of its own; players read an ID3v2 tag in front of it.
        try:
            ID3(path).delete(path)
        except ID3NoHeaderError:
            pass
        tags = ID3()
        for frame in _id3_frames(values, cover):
            tags.add(frame)
        tags.save(path)
    elif fmt == "flac":
        audio = FLAC(path)
        audio.delete()
        audio.clear_pictures()
        for key, value in _vorbis_comments(values).items():
            audio[key] = value
        if cover:
            audio.add_picture(_picture(cover))
        audio.save(deleteid3=True)
    elif fmt in ("vorbis", "opus"):
        audio = OggVorbis(path) if fmt == "vorbis" else OggOpus(path)
        audio.delete()
        for key, value in _vorbis_comments(values).items():
            audio[key] = value
        if cover:
            audio["METADATA_BLOCK_PICTURE"] = base64.b64encode(_picture(cover).write()).decode("ascii")
        audio.save()
    elif fmt in ("m4a", "alac"):
        audio = MP4(path)
        audio.delete()
        audio = MP4(path)
        if audio.tags is None:
            audio.add_tags()
        audio["\xa9nam"] = values["title"]
        audio["\xa9ART"] = values["artist"]
        audio["\xa9alb"] = values["album"]
        audio["\xa9cmt"] = values["comment"]
        if values.get("track_number"):
            audio["trkn"] = [(int(values["track_number"]), int(values.get("track_total") or 0))]
        if values.get("genre"):
            audio["\xa9gen"] = values["genre"]
        if values.get("date"):
            audio["\xa9day"] = values["date"]
        if values.get("isrc"):
            audio["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(values["isrc"].encode())]
        if cover:
            kind = MP4Cover.FORMAT_PNG if cover[1] == "image/png" else MP4Cover.FORMAT_JPEG
            audio["covr"] = [MP4Cover(cover[0], imageformat=kind)]
        audio.save()
    else:  # pragma: no cover - inspection accepts only the formats above
        raise ValueError(f"cannot tag {fmt}")
