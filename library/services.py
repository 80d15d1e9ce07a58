"""Library rules shared by Drive sync, Gmail import, uploads, folder import, admin and API."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from library import storage, tags
from library.drive_tree import file_stem
from library.models import Genre, GmailImport, Track
from radio.models import Station
from radio.services import audit_record, snapshot

logger = logging.getLogger(__name__)


def upload_limit_bytes() -> int:
    """LIBRARY_MAX_UPLOAD_MB in bytes (a fraction of a MB works, which tests rely on)."""
    return int(float(settings.LIBRARY_MAX_UPLOAD_MB) * 1024 * 1024)


class ImportRejected(Exception):
    """A file that cannot become a track, with a reason a person can act on."""


def genre_for(station: Station, name: str | None) -> Genre | None:
    name = tags.display_text(name or "")
    if not name:
        return None
    genre = Genre.objects.filter(station=station, name__iexact=name).first()
    return genre or Genre.objects.create(station=station, name=name[:100])


# Text derived from file names, folder names and tags that people read: bidi controls
# are stripped from these (the raw Drive name stays in `source_name`).
DISPLAY_FIELDS = ("title", "artist", "album", "show_name", "batch", "language")


def track_apply(track: Track, values: dict[str, Any]) -> list[str]:
    """Set automatic values, skipping fields a person edited by hand. Returns what changed."""
    changed = []
    for field, value in values.items():
        if field in track.edited_fields:
            continue
        if field in DISPLAY_FIELDS and isinstance(value, str):
            value = tags.display_text(value)
        if getattr(track, field) != value:
            setattr(track, field, value)
            changed.append(field)
    return changed


def _tag_values(station: Station, info: tags.AudioInfo, original_name: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": (tags.display_text(info.title) or tags.display_text(file_stem(original_name))
                  or original_name)[:300],
        "duration": info.duration,
        "bitrate": info.bitrate,
        "sample_rate": info.sample_rate,
        "mime_type": info.mime_type,
    }
    if info.artist:
        values["artist"] = info.artist[:300]
    if info.album:
        values["album"] = info.album[:300]
    if info.year:
        values["year"] = info.year
    if info.language:
        values["language"] = info.language[:16]
    if info.genre:
        values["genre"] = genre_for(station, info.genre)
    return values


def _store_cover(station: Station, info: tags.AudioInfo) -> str:
    if not info.cover:
        return ""
    ext = ".png" if "png" in info.cover_mime else ".jpg"
    rel, _md5, _size = storage.store(station.slug, ext, lambda w: w.write(info.cover))
    return rel


def track_attach_file(track: Track, *, rel: str, md5: str, size: int,
                      original_name: str, hints: dict[str, Any] | None = None) -> list[str]:
    """Point the track at a cached file and read its tags. Hints (folder conventions,
    classification) win over tags; hand edits win over both. The caller saves."""
    path = storage.absolute(rel)
    info = tags.read(path)
    values = _tag_values(track.station, info, original_name)
    values.update(hints or {})
    changed = track_apply(track, values)
    if track.file and track.file != rel and storage.exists(track.file):
        # No longer this track's file: its age now counts from here, so the cache cleaner
        # leaves it for the grace period (a playback worker may hold its path in memory).
        storage.touch(storage.absolute(track.file))
    for field, value in (("file", rel), ("file_checksum", md5), ("size", size)):
        if getattr(track, field) != value:
            setattr(track, field, value)
            changed.append(field)
    if not track.checksum:
        track.checksum = md5
        changed.append("checksum")
    cover = _store_cover(track.station, info)
    if cover and cover != track.cover:
        track.cover = cover
        changed.append("cover")
    if "file" in changed:
        track.analysis, track.analysis_error = Track.Analysis.PENDING, ""
        changed += ["analysis", "analysis_error"]
    return changed


def track_import_file(
    *,
    station: Station,
    path: Path,
    source: str,
    source_id: str = "",
    original_name: str = "",
    source_path: str = "",
    hints: dict[str, Any] | None = None,
    actor=None,
) -> Track:
    """Bring a local audio file into the library (upload, folder, Gmail).

    Idempotent on (station, source, source_id): importing the same source again
    updates that track. Raises ImportRejected when the content is not audio.
    """
    original_name = original_name or path.name
    try:
        tags.read(path)
    except tags.NotAudio as exc:
        raise ImportRejected(f"{original_name}: {exc}") from exc
    # Cached under the extension of what the bytes are, not of what the name claims.
    rel, md5, size = storage.store_copy(station.slug, path, tags.sniff_extension)
    with transaction.atomic():
        track = None
        if source_id:
            track = (Track.objects.select_for_update()
                     .filter(station=station, source=source, source_id=source_id).first())
        created = track is None
        if created:
            track = Track(station=station, source=source, source_id=source_id, title=original_name)
        before = None if created else snapshot(track)
        track.checksum = md5
        track.source_path = source_path or original_name
        track.missing_since = None
        track_attach_file(track, rel=rel, md5=md5, size=size, original_name=original_name,
                          hints=hints)
        track.save()
        if actor is not None:
            audit_record(actor=actor, station=station,
                         action="track.import" if created else "track.reimport",
                         obj=track, before=before, after=snapshot(track))
        track_id = track.pk
        transaction.on_commit(lambda: track_enqueue_analysis(track_id))
    logger.info("station=%s track=%s imported from %s %s", station.slug, track.pk, source,
                source_id or original_name)
    return track


# A queued analysis leaves this marker in Redis (the cache, on the broker's server), so
# the sweep does not queue the same track again while its message waits in a backlog.
# Past this age a still-pending track's message is presumed lost and it is queued again.
ANALYSIS_QUEUED_KEY = "library:analysis-queued:{}"
ANALYSIS_QUEUED_SECONDS = 3600
# The sweep leaves fresh tracks alone: their own enqueue is still on its way.
ANALYSIS_SWEEP_MIN_AGE_SECONDS = 120
ANALYSIS_SWEEP_BATCH = 500


def track_enqueue_analysis(track_id: int) -> bool:
    """Queue the analysis of one track; False if the broker is down (never raises).

    A track that could not be queued stays pending and `tracks_analysis_sweep`
    (beat, every minute) queues it once the broker is back: nothing is lost.
    """
    from django.core.cache import cache

    from library.tasks import analyse_track

    try:
        analyse_track.delay(track_id)
    except Exception as exc:  # noqa: BLE001 - broker down: the track stays pending
        logger.warning("track=%s analysis not queued: broker unavailable (%s); it stays pending "
                       "and the analysis sweep will queue it again once the broker is back",
                       track_id, exc)
        return False
    try:
        cache.set(ANALYSIS_QUEUED_KEY.format(track_id), 1, ANALYSIS_QUEUED_SECONDS)
    except Exception as exc:  # noqa: BLE001 - only costs a second, harmless analysis
        logger.warning("track=%s analysis queued but not marked (%s): the sweep may queue it again",
                       track_id, exc)
    return True


def tracks_analysis_sweep(*, min_age: float = ANALYSIS_SWEEP_MIN_AGE_SECONDS,
                          limit: int = ANALYSIS_SWEEP_BATCH) -> list[int]:
    """Queue the analysis of tracks left pending (their enqueue was lost); returns their ids.

    Candidates have a cached file of their current content, are still pending, were
    last saved over `min_age` seconds ago and carry no queued marker. Analysing a
    track twice is harmless: it measures the same file and writes the same fields.
    """
    from django.core.cache import cache

    cutoff = timezone.now() - timedelta(seconds=min_age)
    candidates = list(
        Track.objects.filter(analysis=Track.Analysis.PENDING, missing_since__isnull=True,
                             file_checksum=F("checksum"), updated_at__lt=cutoff)
        .exclude(file="").order_by("updated_at").values_list("pk", flat=True)[:limit])
    if not candidates:
        return []
    queued = cache.get_many([ANALYSIS_QUEUED_KEY.format(pk) for pk in candidates])
    swept = [pk for pk in candidates
             if ANALYSIS_QUEUED_KEY.format(pk) not in queued and track_enqueue_analysis(pk)]
    if swept:
        logger.warning("analysis sweep: queued %d track(s) left pending: %s", len(swept),
                       ", ".join(f"track={pk}" for pk in swept))
    return swept


def track_analyse(*, track: Track) -> Track:
    """Measure the cached file; flag it unplayable (never queued for air) with the reason."""
    from library.analysis import Unplayable, analyse_file

    if not storage.exists(track.file):
        track.analysis, track.analysis_error = Track.Analysis.FAILED, "no cached file"
        track.save(update_fields=["analysis", "analysis_error"])
        return track
    try:
        result = analyse_file(storage.absolute(track.file))
    except Unplayable as exc:
        track.analysis, track.analysis_error = Track.Analysis.FAILED, str(exc)[:2000]
        track.save(update_fields=["analysis", "analysis_error"])
        logger.warning("track=%s unplayable: %s", track.pk, exc)
        return track
    # The decode can take minutes: a person may have edited the track meanwhile. Re-read
    # what they marked as edited and write only measured fields, so no edit is lost.
    track.refresh_from_db(fields=["edited_fields"])
    changed = track_apply(track, {"cue_in": result.cue_in, "cue_out": result.cue_out})
    track.duration = result.duration
    track.loudness_lufs = result.loudness_lufs
    track.true_peak_dbtp = result.true_peak_dbtp
    track.analysis, track.analysis_error = Track.Analysis.OK, ""
    track.save(update_fields=[*changed, "duration", "loudness_lufs", "true_peak_dbtp", "analysis",
                              "analysis_error"])
    return track


def track_update(*, actor, track: Track, data: dict[str, Any]) -> Track:
    """A person's edit: the fields become hand-edited and syncs leave them alone."""
    with transaction.atomic():
        before = snapshot(track)
        edited = set(track.edited_fields)
        for field, value in data.items():
            setattr(track, field, value)
            if field in Track.EDITABLE_FIELDS:
                edited.add(field)
        track.edited_fields = sorted(edited)
        track.full_clean(exclude=["file", "cover"])
        track.save()
        audit_record(actor=actor, station=track.station, action="track.update", obj=track,
                     before=before, after=snapshot(track))
    return track


def track_mark_missing(track: Track) -> bool:
    if track.missing_since is None:
        track.missing_since = timezone.now()
        return True
    return False


def duplicate_checksums(station: Station) -> QuerySet:
    """Checksums held by more than one track: the same file twice."""
    return (Track.objects.filter(station=station).exclude(checksum="")
            .values("checksum").annotate(n=Count("id")).filter(n__gt=1).order_by("-n"))


def likely_duplicates(station: Station) -> QuerySet:
    """Normalised artist + title held by more than one track: probably the same song."""
    return (Track.objects.filter(station=station).exclude(dedupe_key="|")
            .values("dedupe_key").annotate(n=Count("id")).filter(n__gt=1).order_by("-n"))


def genre_create(*, actor, station: Station, name: str) -> Genre:
    with transaction.atomic():
        genre = Genre.objects.create(station=station, name=name)
        audit_record(actor=actor, station=station, action="genre.add", obj=genre, after=snapshot(genre))
    return genre


DUPLICATE_GROUP_LIMIT = 200


def _groups(station: Station, field: str, keys: list[str]) -> list[dict[str, Any]]:
    rows = (Track.objects.filter(station=station, **{f"{field}__in": keys}).order_by("id")
            .values("id", "title", "artist", "kind", "enabled", field))
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_key[row.pop(field)].append(row)
    return [{"key": key, "count": len(by_key[key]), "tracks": by_key[key]} for key in keys]


def duplicate_groups(station: Station) -> dict[str, list[dict[str, Any]]]:
    """Tracks that are the same file, and tracks that are probably the same song."""
    same = [row["checksum"] for row in duplicate_checksums(station)[:DUPLICATE_GROUP_LIMIT]]
    likely = [row["dedupe_key"] for row in likely_duplicates(station)[:DUPLICATE_GROUP_LIMIT]]
    return {"same_file": _groups(station, "checksum", same),
            "likely": _groups(station, "dedupe_key", likely)}


# --- Cache cleaning ---------------------------------------------------------------
# A content change leaves the old blob behind (the cache is content-addressed). It is
# removed once no row refers to it and it has been left alone for the grace period.
CACHE_CLEAN_GRACE_SECONDS = 6 * 3600


def cache_references() -> set[str]:
    """Every cache path a row points at, on any station (tracks' files and covers,
    Gmail attachments waiting for review)."""
    refs: set[str] = set()
    for rel_file, rel_cover in Track.objects.values_list("file", "cover").iterator(chunk_size=5000):
        refs.update((rel_file, rel_cover))
    refs.update(GmailImport.objects.exclude(stash="").values_list("stash", flat=True))
    refs.discard("")
    return refs


def library_cache_clean(*, dry_run: bool = False,
                        grace: float = CACHE_CLEAN_GRACE_SECONDS) -> dict[str, Any]:
    """Remove cached files no row refers to, untouched for `grace` seconds; and dead temp files.

    Returns {"removed": [paths], "bytes": n, "kept_recent": n}. Never removes a file a
    track, a cover or a Gmail stash refers to, checked again just before removing.
    """
    refs = cache_references()
    cutoff = time.time() - grace
    candidates, kept_recent = [], 0
    for rel, path in storage.blobs():
        if rel in refs:
            continue
        try:
            if path.stat().st_mtime >= cutoff:
                kept_recent += 1
                continue
        except FileNotFoundError:
            continue
        candidates.append((rel, path))
    # A row may have started pointing at a candidate since the references were read.
    rels, taken = [rel for rel, _path in candidates], set()
    for start in range(0, len(rels), 1000):
        batch = rels[start:start + 1000]
        taken.update(Track.objects.filter(file__in=batch).values_list("file", flat=True))
        taken.update(Track.objects.filter(cover__in=batch).values_list("cover", flat=True))
        taken.update(GmailImport.objects.filter(stash__in=batch).values_list("stash", flat=True))
    removed, freed = [], 0
    for rel, path in candidates:
        if rel in taken:
            continue
        try:
            stat = path.stat()
            if stat.st_mtime >= cutoff:  # touched meanwhile (storage.find)
                continue
            if not dry_run:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(rel)
        freed += stat.st_size
    for part in storage.stale_parts(max(grace, 24 * 3600)):
        if not dry_run:
            part.unlink(missing_ok=True)
        removed.append(part.relative_to(settings.MEDIA_ROOT).as_posix())
    if removed:
        logger.info("library cache clean%s: %d file(s), %d bytes: %s", " (dry run)" if dry_run else "",
                    len(removed), freed, ", ".join(removed[:20]) + (" …" if len(removed) > 20 else ""))
    return {"removed": removed, "bytes": freed, "kept_recent": kept_recent, "dry_run": dry_run}
