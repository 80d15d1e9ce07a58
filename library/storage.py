"""The local audio cache: content-addressed files, written by temp file + atomic rename.

A file is stored under MEDIA_ROOT/library/<station>/<md5[:2]>/<md5><ext>. It is
complete or absent, never half-written: bytes go to a temp file in the same
folder, are checked against the expected MD5, fsynced, then renamed in place.
Renames and moves in Drive never touch the cache, since the content is the key.
The extension comes from the bytes (library/tags.py, `sniff`), never from the name.
A file no row refers to any more is removed by `library_cache_clean` (services) once
it has been left alone for a grace period: its mtime is refreshed whenever a row
starts or stops pointing at it, so a download in progress or a file the playback
worker still holds in memory is never taken away.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings


class ChecksumMismatch(Exception):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"checksum mismatch: expected {expected}, got {actual}")
        self.expected, self.actual = expected, actual


class HashingWriter:
    """A file-like object that writes through and hashes what it writes."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.md5 = hashlib.md5()  # noqa: S324 - Drive's own content checksum, not security
        self.size = 0

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def relative_path(station_slug: str, checksum: str, ext: str) -> str:
    ext = ext.lower() if ext.startswith(".") or not ext else f".{ext.lower()}"
    return f"library/{station_slug}/{checksum[:2]}/{checksum}{ext}"


def absolute(rel: str) -> Path:
    path = (settings.MEDIA_ROOT / rel).resolve()
    if settings.MEDIA_ROOT not in path.parents:
        raise ValueError(f"{rel!r} is outside the media folder")
    return path


def exists(rel: str) -> bool:
    return bool(rel) and absolute(rel).is_file()


def station_root(station_slug: str) -> Path:
    return settings.MEDIA_ROOT / "library" / station_slug


STAGING = "tmp"


def find(station_slug: str, checksum: str) -> str:
    """The cached file holding this content, whatever its extension ("" if none).

    Refreshes its mtime: a caller is about to point a row at it, and the cleaner
    leaves recently touched files alone.
    """
    if not checksum:
        return ""
    folder = station_root(station_slug) / checksum[:2]
    for path in sorted(folder.glob(f"{checksum}.*")) if folder.is_dir() else []:
        if path.is_file() and path.stem == checksum:
            touch(path)
            return path.relative_to(settings.MEDIA_ROOT).as_posix()
    return ""


def touch(path: Path) -> None:
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


def blobs() -> Iterator[tuple[str, Path]]:
    """Every cached file (relative path, absolute path), staging folders excluded."""
    root = settings.MEDIA_ROOT / "library"
    if not root.is_dir():
        return
    for station in sorted(p for p in root.iterdir() if p.is_dir()):
        for folder in sorted(p for p in station.iterdir() if p.is_dir() and p.name != STAGING):
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    yield path.relative_to(settings.MEDIA_ROOT).as_posix(), path


def stale_parts(older_than: float) -> Iterator[Path]:
    """Temp files of downloads that died (a worker killed mid-write), older than `older_than` s."""
    root = settings.MEDIA_ROOT / "library"
    cutoff = time.time() - older_than
    for path in sorted(root.glob(f"*/{STAGING}/*.part")) if root.is_dir() else []:
        try:
            if path.stat().st_mtime < cutoff:
                yield path
        except FileNotFoundError:
            continue


def store(station_slug: str, ext: str | Callable[[Path], str], write: Callable[[HashingWriter], None],
          expected_md5: str | None = None) -> tuple[str, str, int]:
    """Write through `write(writer)`, verify, and atomically place the file.

    `ext` is the extension, or a function of the written temp file that returns it
    (tags.sniff_extension: the type from the bytes); what it raises propagates, and
    the temp file is removed. Returns (relative path, md5, size). Raises
    ChecksumMismatch (leaving nothing behind) when `expected_md5` is given and differs.
    """
    staging = station_root(station_slug) / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=staging, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = HashingWriter(handle)
            write(writer)
            handle.flush()
            os.fsync(handle.fileno())
        md5 = writer.md5.hexdigest()
        if expected_md5 and md5 != expected_md5.lower():
            raise ChecksumMismatch(expected_md5, md5)
        if callable(ext):
            ext = ext(Path(temp_name))
        rel = relative_path(station_slug, md5, ext)
        target = absolute(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp_name, target)
        return rel, md5, writer.size
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def store_copy(station_slug: str, source: Path,
               ext: str | Callable[[Path], str] | None = None) -> tuple[str, str, int]:
    """Copy a local file into the cache (uploads, Gmail attachments, folder imports)."""
    with open(source, "rb") as handle:
        return store(station_slug, ext if ext is not None else source.suffix,
                     lambda writer: shutil.copyfileobj(handle, writer, 1024 * 1024))


def md5_of(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
