"""The local audio cache: content-addressed files, written by temp file + atomic rename.

A file is stored under MEDIA_ROOT/library/<station>/<md5[:2]>/<md5><ext>. It is
complete or absent, never half-written: bytes go to a temp file in the same
folder, are checked against the expected MD5, fsynced, then renamed in place.
Renames and moves in Drive never touch the cache, since the content is the key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
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


def store(station_slug: str, ext: str, write: Callable[[HashingWriter], None],
          expected_md5: str | None = None) -> tuple[str, str, int]:
    """Write through `write(writer)`, verify, and atomically place the file.

    Returns (relative path, md5, size). Raises ChecksumMismatch (leaving nothing
    behind) when `expected_md5` is given and differs.
    """
    staging = settings.MEDIA_ROOT / "library" / station_slug / "tmp"
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
        rel = relative_path(station_slug, md5, ext)
        target = absolute(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp_name, target)
        return rel, md5, writer.size
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def store_copy(station_slug: str, source: Path, ext: str | None = None) -> tuple[str, str, int]:
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
