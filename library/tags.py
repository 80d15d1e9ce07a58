"""Tags, technical facts and cover art of an audio file, read with mutagen."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import mutagen

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".mp3", ".wav", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac"}
MIME_BY_EXTENSION = {
    ".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".aac": "audio/aac",
    ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg", ".flac": "audio/flac",
}


class NotAudio(Exception):
    """The file is not audio that mutagen recognises (content sniffing)."""


@dataclass
class AudioInfo:
    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    year: int | None = None
    language: str = ""
    duration: float | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    mime_type: str = ""
    cover: bytes | None = None
    cover_mime: str = ""
    extra: dict = field(default_factory=dict)


def _first(tags, *keys: str) -> str:
    for key in keys:
        try:
            value = tags.get(key)
        except (KeyError, ValueError):
            value = None
        if value:
            text = value[0] if isinstance(value, list) else value
            return str(text).strip()
    return ""


def _year(text: str) -> int | None:
    digits = text[:4]
    return int(digits) if digits.isdigit() and 1000 < int(digits) < 3000 else None


def _cover(path: Path) -> tuple[bytes | None, str]:
    try:
        full = mutagen.File(path)
    except Exception:  # noqa: BLE001 - a bad cover never blocks an import
        return None, ""
    if full is None:
        return None, ""
    pictures = getattr(full, "pictures", None)  # FLAC
    if pictures:
        return pictures[0].data, pictures[0].mime
    tags = getattr(full, "tags", None)
    if tags is None:
        return None, ""
    for key in list(tags.keys()):
        if str(key).startswith("APIC"):  # ID3
            frame = tags[key]
            return frame.data, frame.mime
        if key == "covr":  # MP4
            data = bytes(tags[key][0])
            return data, "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return None, ""


def read(path: Path) -> AudioInfo:
    """Read what the file says about itself. Raises NotAudio for anything else."""
    try:
        easy = mutagen.File(path, easy=True)
    except mutagen.MutagenError as exc:
        raise NotAudio(f"unreadable audio: {exc}") from exc
    if easy is None:
        raise NotAudio("not a recognised audio format")
    info = AudioInfo()
    tags = easy.tags or {}
    info.title = _first(tags, "title")
    info.artist = _first(tags, "artist", "albumartist")
    info.album = _first(tags, "album")
    info.genre = _first(tags, "genre")
    info.year = _year(_first(tags, "date", "year", "originaldate"))
    info.language = _first(tags, "language")
    stream = getattr(easy, "info", None)
    if stream is not None:
        length = getattr(stream, "length", None)
        info.duration = round(float(length), 3) if length else None
        bitrate = getattr(stream, "bitrate", None)
        info.bitrate = int(bitrate) if bitrate else None
        rate = getattr(stream, "sample_rate", None)
        info.sample_rate = int(rate) if rate else None
    mimes = getattr(easy, "mime", None) or []
    info.mime_type = MIME_BY_EXTENSION.get(path.suffix.lower(), mimes[0] if mimes else "")
    info.cover, info.cover_mime = _cover(path)
    return info
