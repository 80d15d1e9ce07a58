"""Real audio files for tests, made with ffmpeg: tones with chosen silences, tags, cover art.

The format follows the file's extension: .mp3, .wav, .flac, .ogg/.oga, .opus,
.m4a, .aac. Each helper writes the file and returns its path.

    make_tone(tmp_path / "song.mp3", seconds=3, lead_silence=1.0, title="Shalom")
    make_silence(tmp_path / "quiet.wav", seconds=2)
    make_corrupt(tmp_path / "noise.mp3")          # random bytes with an audio name
    make_truncated(tmp_path / "cut.mp3", keep=0.4)  # the first 40% of a valid file
"""

from __future__ import annotations

import random
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from library.analysis import ffmpeg_binary

__all__ = ["CODECS", "ffmpeg", "make_corrupt", "make_silence", "make_tone", "make_truncated", "png"]

CODECS: dict[str, list[str]] = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "4"],
    ".oga": ["-c:a", "libvorbis", "-q:a", "4", "-f", "ogg"],
    ".opus": ["-c:a", "libopus", "-b:a", "96k"],
    ".m4a": ["-c:a", "aac", "-b:a", "128k"],
    ".aac": ["-c:a", "aac", "-b:a", "128k", "-f", "adts"],
}
COVER_FORMATS = {".mp3", ".flac", ".m4a"}


def ffmpeg(*args: str) -> None:
    """Run ffmpeg; a failure raises with ffmpeg's own message."""
    completed = subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error",
                                "-y", *args], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {completed.stderr.strip()}")


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A solid-colour PNG image (cover art)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def _codec(path: Path) -> list[str]:
    try:
        return CODECS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"no test encoder for {path.suffix!r}; known: {', '.join(CODECS)}") from None


def _metadata(title: str | None, artist: str | None, album: str | None, genre: str | None,
              year: int | None) -> list[str]:
    pairs = {"title": title, "artist": artist, "album": album, "genre": genre,
             "date": str(year) if year else None}
    args: list[str] = []
    for key, value in pairs.items():
        if value:
            args += ["-metadata", f"{key}={value}"]
    return args


def _tag_wav(path: Path, title: str | None, artist: str | None, album: str | None,
             genre: str | None, year: int | None) -> None:
    """ffmpeg writes WAV tags as a RIFF INFO chunk; mutagen reads ID3 in WAV, so add that too."""
    import mutagen.wave
    from mutagen.id3 import TALB, TCON, TDRC, TIT2, TPE1

    frames = [(TIT2, title), (TPE1, artist), (TALB, album), (TCON, genre),
              (TDRC, str(year) if year else None)]
    if not any(value for _frame, value in frames):
        return
    wave = mutagen.wave.WAVE(path)
    wave.add_tags()
    for frame, value in frames:
        if value:
            wave.tags.add(frame(encoding=3, text=value))
    wave.save()


def _tone_expression(seconds: float, lead_silence: float, freq: float, level_db: float) -> str:
    amplitude = 10 ** (level_db / 20)
    start, end = lead_silence, lead_silence + seconds
    return f"if(between(t\\,{start:g}\\,{end:g})\\,{amplitude:.6f}*sin(2*PI*{freq:g}*t)\\,0)"


def make_tone(path: Path, seconds: float = 2.0, lead_silence: float = 0.0, tail_silence: float = 0.0,
              freq: float = 440.0, title: str | None = None, artist: str | None = None,
              album: str | None = None, genre: str | None = None, year: int | None = None, *,
              level_db: float = -20.0, cover: bool = False, channels: int = 2,
              sample_rate: int = 44100) -> Path:
    """A sine of `level_db` dBFS peak on every channel, between digital-silence margins.

    Tags are written with ffmpeg's `-metadata`; `cover=True` embeds a PNG (mp3, flac, m4a).
    """
    path = Path(path)
    codec = _codec(path)
    if cover and path.suffix.lower() not in COVER_FORMATS:
        raise ValueError(f"cover art is supported for {', '.join(sorted(COVER_FORMATS))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    channel = _tone_expression(seconds, lead_silence, freq, level_db)
    total = lead_silence + seconds + tail_silence
    source = f"aevalsrc={'|'.join([channel] * channels)}:s={sample_rate}:d={total:g}"
    tags = _metadata(title, artist, album, genre, year)
    with tempfile.TemporaryDirectory() as scratch:
        inputs = ["-f", "lavfi", "-i", source]
        maps: list[str] = []
        if cover:
            image = Path(scratch) / "cover.png"
            image.write_bytes(png())
            inputs += ["-i", str(image)]
            maps = ["-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic"]
        ffmpeg(*inputs, *maps, *codec, *tags, str(path))
    if path.suffix.lower() == ".wav":
        _tag_wav(path, title, artist, album, genre, year)
    return path


def make_silence(path: Path, seconds: float = 2.0, **tags) -> Path:
    """Digital silence in a valid file: decodes fine, nothing to hear."""
    return make_tone(path, seconds=0.0, lead_silence=seconds, **tags)


def make_corrupt(path: Path, size: int = 20_000, seed: int = 0) -> Path:
    """Random bytes under an audio file name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def make_truncated(path: Path, keep: float = 0.4, **tone) -> Path:
    """The first `keep` fraction of the bytes of a valid file (as from an interrupted copy)."""
    path = make_tone(path, **tone)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
