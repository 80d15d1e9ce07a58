"""`python manage.py import_folder PATH --station SLUG [--kind KIND] [--genre NAME] [--no-recursive]`

Imports every audio file under PATH through the shared import pipeline
(library.services.track_import_file). A file is keyed on its absolute path, so
running it again updates what changed and leaves the rest alone.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from library import storage, tags
from library.models import Track
from library.services import ImportRejected, genre_for, track_import_file
from radio.models import Station

logger = logging.getLogger(__name__)


@dataclass
class Summary:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)

    def line(self) -> str:
        return (f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}, "
                f"skipped {len(self.skipped)}")


def folder_files(root: Path, recursive: bool) -> Iterator[Path]:
    """Regular files under root, in a stable order."""
    found = root.rglob("*") if recursive else root.glob("*")
    yield from sorted(path for path in found if path.is_file())


def _unchanged(track: Track | None, path: Path, source_path: str, hints: dict[str, Any]) -> bool:
    """Already imported from these bytes at this place with these hints: nothing to do."""
    if track is None or track.missing_since is not None or track.source_path != source_path:
        return False
    if any(name not in track.edited_fields and getattr(track, name) != value
           for name, value in hints.items()):
        return False
    return storage.exists(track.file) and storage.md5_of(path) == track.file_checksum


def import_one(*, station: Station, root: Path, path: Path, hints: dict[str, Any]) -> str:
    """Import one file; returns "imported", "updated" or "unchanged". Raises ImportRejected."""
    source_id = str(path.resolve())
    source_path = path.relative_to(root).as_posix()
    existing = Track.objects.filter(station=station, source=Track.Source.FOLDER,
                                    source_id=source_id).first()
    if _unchanged(existing, path, source_path, hints):
        logger.debug("station=%s track=%s unchanged: %s", station.slug, existing.pk, source_path)
        return "unchanged"
    track_import_file(station=station, path=path, source=Track.Source.FOLDER, source_id=source_id,
                      original_name=path.name, source_path=source_path, hints=hints)
    return "updated" if existing else "imported"


def _reason(exc: Exception, name: str) -> str:
    return str(exc).removeprefix(f"{name}: ")


class Command(BaseCommand):
    help = "Import the audio files in a folder (and, by default, its subfolders) into a station's library."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", type=Path, help="folder to import")
        parser.add_argument("--station", required=True, help="slug of the station")
        parser.add_argument("--kind", help=f"kind of every track: {', '.join(Track.Kind.values)}")
        parser.add_argument("--genre", help="genre of every track (created when new)")
        parser.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                            help="include subfolders (default: yes)")

    def handle(self, *args, path: Path, station: str, kind: str | None, genre: str | None,
               recursive: bool, **options) -> None:
        root = self._root(path)
        target = self._station(station)
        hints = self._hints(target, kind, genre)
        summary = Summary()
        for file in folder_files(root, recursive):
            self._import(target, root, file, hints, summary)
        for name, reason in summary.skipped:
            self.stdout.write(self.style.WARNING(f"skipped {name}: {reason}"))
        self.stdout.write(summary.line())
        logger.info("station=%s folder %s: %s", target.slug, root, summary.line())

    def _import(self, station: Station, root: Path, file: Path, hints: dict[str, Any],
                summary: Summary) -> None:
        name = file.relative_to(root).as_posix()
        if file.suffix.lower() not in tags.AUDIO_EXTENSIONS:
            reason = f"not an audio file ({file.suffix or 'no extension'})"
        else:
            try:
                outcome = import_one(station=station, root=root, path=file, hints=hints)
            except (ImportRejected, OSError) as exc:
                reason = _reason(exc, file.name)
            else:
                setattr(summary, outcome, getattr(summary, outcome) + 1)
                return
        logger.info("station=%s file=%s skipped: %s", station.slug, name, reason)
        summary.skipped.append((name, reason))

    @staticmethod
    def _root(path: Path) -> Path:
        root = path.expanduser().resolve()
        if not root.is_dir():
            raise CommandError(f"{path} is not a folder.")
        return root

    @staticmethod
    def _station(slug: str) -> Station:
        station = Station.objects.filter(slug=slug).first()
        if station is None:
            known = ", ".join(Station.objects.order_by("slug").values_list("slug", flat=True))
            raise CommandError(f"Unknown station {slug!r}; known: {known or 'none'}.")
        return station

    @staticmethod
    def _hints(station: Station, kind: str | None, genre: str | None) -> dict[str, Any]:
        hints: dict[str, Any] = {}
        if kind is not None:
            if kind not in Track.Kind.values:
                raise CommandError(f"Unknown kind {kind!r}; known: {', '.join(Track.Kind.values)}.")
            hints["kind"] = kind
        if genre:
            hints["genre"] = genre_for(station, genre)
        return hints
