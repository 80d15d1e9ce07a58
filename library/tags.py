"""Tags, technical facts and cover art of an audio file, read with mutagen."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import mutagen

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".mp3", ".mp2", ".wav", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac",
                    ".aiff"}
MIME_BY_EXTENSION = {
    ".mp3": "audio/mpeg", ".mp2": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4",
    ".aac": "audio/aac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
    ".flac": "audio/flac", ".aiff": "audio/aiff",
}

# Unicode bidirectional controls (LRM, RLM, ALM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI):
# invisible, they reorder what follows them ("\u202eevil.mp3" shows as "3pm.live").
BIDI_CONTROLS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")


def display_text(text: str) -> str:
    """A name or tag as shown to people: bidi controls removed (the raw name is kept apart)."""
    return BIDI_CONTROLS.sub("", text or "").strip()


class NotAudio(Exception):
    """The file is not audio that mutagen recognises (content sniffing)."""


@dataclass(frozen=True)
class AudioType:
    ext: str
    mime: str


# mutagen's class for a file → how we cache and serve it (the fallback of `sniff`).
_TYPE_BY_MUTAGEN = {
    "MP3": AudioType(".mp3", "audio/mpeg"), "WAVE": AudioType(".wav", "audio/wav"),
    "FLAC": AudioType(".flac", "audio/flac"), "OggVorbis": AudioType(".ogg", "audio/ogg"),
    "OggOpus": AudioType(".opus", "audio/ogg"), "OggFLAC": AudioType(".oga", "audio/ogg"),
    "OggSpeex": AudioType(".ogg", "audio/ogg"), "MP4": AudioType(".m4a", "audio/mp4"),
    "AAC": AudioType(".aac", "audio/aac"), "AIFF": AudioType(".aiff", "audio/aiff"),
}


def _id3_size(header: bytes) -> int:
    """Bytes an ID3v2 tag at the start takes (its size is 4 × 7-bit "syncsafe" bytes)."""
    size = 0
    for byte in header[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if header[5] & 0x10 else 0)  # + footer


def _magic(head: bytes) -> AudioType | None:
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return AudioType(".wav", "audio/wav")
    if head[:4] == b"fLaC":
        return AudioType(".flac", "audio/flac")
    if head[:4] == b"OggS":
        return AudioType(".opus" if b"OpusHead" in head[:128] else ".ogg", "audio/ogg")
    if head[4:8] == b"ftyp":
        return AudioType(".m4a", "audio/mp4")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return AudioType(".aiff", "audio/aiff")
    if len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0x03
        if layer == 0 and head[1] & 0xF6 == 0xF0:  # ADTS: 12-bit sync, layer 00
            return AudioType(".aac", "audio/aac")
        if layer == 1:
            return AudioType(".mp3", "audio/mpeg")
        if layer in (2, 3):
            return AudioType(".mp2", "audio/mpeg")
    return None


def sniff(path: Path) -> AudioType:
    """What audio the bytes hold, whatever the file is called. Raises NotAudio.

    Magic numbers first (RIFF/WAVE, fLaC, OggS, ftyp, FORM/AIFF, an MPEG or ADTS frame
    sync, after any ID3v2 tag); then mutagen, whose scoring also weighs the name: it is
    only asked when the bytes alone did not say.
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
        if head[:3] == b"ID3" and len(head) >= 10:
            handle.seek(_id3_size(head))
            after = handle.read(4096)
            found = _magic(after) if after else None
            if found is not None:
                return found
        else:
            found = _magic(head)
            if found is not None:
                return found
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise NotAudio(f"unreadable audio: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - mutagen parsers raise odd errors on junk
        raise NotAudio(f"unreadable audio: {type(exc).__name__}: {exc}") from exc
    if audio is None:
        raise NotAudio(f"not a recognised audio format (starts with {head[:8]!r})")
    known = _TYPE_BY_MUTAGEN.get(type(audio).__name__)
    if known is not None:
        return known
    mimes = [m for m in getattr(audio, "mime", []) if m.startswith("audio/")]
    if not mimes:
        raise NotAudio(f"not a recognised audio format ({type(audio).__name__})")
    return AudioType(f".{type(audio).__name__.lower()}", mimes[0])


def sniff_extension(path: Path) -> str:
    """The cache extension for these bytes (storage.store's `ext` callable)."""
    return sniff(path).ext


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
    kind = sniff(path)
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
    info.mime_type = kind.mime  # from the bytes: the name may lie (a WAV called .mp3)
    info.cover, info.cover_mime = _cover(path)
    return info
