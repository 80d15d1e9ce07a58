"""Drive downloads: a failure belongs to the file, not to the run.

Drive can refuse one file while serving every other (403 cannotDownloadAbusiveFile
for a file it flagged as malware or spam, 404 notFound, 5xx that persist for that
file, a body cut short, bytes that do not match md5Checksum). Such a failure is
recorded on its track — the reason, how many in a row, when to try again — and
the sync goes on with the next file. The next attempt waits 1 min, 2 min, 4 min …
up to a day; new content in Drive is tried at once. What concerns every file
(401, a 403 that is not about one file, an exhausted quota, Google out of reach)
still fails the run, and a rate limit stops the downloads until the next run
without blaming a file.
"""

from __future__ import annotations

import http.client
import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from googleapiclient.errors import HttpError

from library import storage
from library.models import Track
from library.tags import NotAudio
from radio.google import error_message, error_reasons, is_quota_exhausted, is_rate_limit
from radio.models import Station
from radio.services import audit_record, snapshot

logger = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 24 * 3600

# 403 reasons Drive gives about one file (the others on a 403 concern the credentials
# or the project: insufficientPermissions, domainPolicy, forbidden … and fail the run).
FILE_REASONS = {
    "cannotDownloadAbusiveFile",  # flagged as malware or spam
    "cannotDownloadFile",  # the owner turned downloading off
    "fileNotDownloadable",  # a Google Docs editors file or a shortcut: no bytes
    "downloadQuotaExceeded",  # this file was downloaded too often lately
    "insufficientFilePermissions",  # no read access to this file
    "appNotAuthorizedToFile",  # drive.file scope: not opened with this app
    "notFound",
}

# A transfer cut short: the file's bytes did not arrive, Drive itself answered.
_INTERRUPTED = (http.client.IncompleteRead, ConnectionResetError, TimeoutError, socket.timeout)


class DownloadsPaused(Exception):
    """Google rate-limits downloads: stop for this run; the files wait, through no fault of theirs."""


@dataclass
class DownloadFailure:
    reason: str
    retry: bool = True  # False: not before the content changes (the bytes are not audio)
    transient: bool = False  # a transfer cut short: the first retry is at the next run


def download_failure(exc: BaseException) -> DownloadFailure:
    """What a download error means for its file; re-raises what is not the file's problem."""
    if isinstance(exc, storage.ChecksumMismatch):
        return DownloadFailure(f"the bytes did not match Drive's md5Checksum ({exc})")
    if isinstance(exc, NotAudio):
        return DownloadFailure(f"not audio: {exc}", retry=False)
    if isinstance(exc, HttpError):
        status = exc.resp.status
        if is_rate_limit(exc):
            raise DownloadsPaused(f"Google rate limit (HTTP {status}): {error_message(exc)}") from exc
        if is_quota_exhausted(exc) or status == 401:
            raise exc
        reasons = error_reasons(exc)
        if status == 403 and not reasons & FILE_REASONS:
            raise exc  # e.g. insufficientPermissions: every file would answer the same
        label = ", ".join(sorted(reasons - {"NOT_FOUND", "PERMISSION_DENIED", "INTERNAL",
                                            "UNAVAILABLE"})) or exc.resp.reason or "error"
        if status >= 500:
            return DownloadFailure(f"Drive kept answering HTTP {status} ({label}) for this file "
                                   f"after retries: {error_message(exc)}")
        return DownloadFailure(f"Drive refused this file: HTTP {status} ({label}): {error_message(exc)}")
    if isinstance(exc, _INTERRUPTED):
        return DownloadFailure(f"the transfer was cut short ({type(exc).__name__}: {exc})",
                               transient=True)
    raise exc  # Drive out of reach, a full disk …: not this file's fault


def backoff(failures: int) -> timedelta:
    """0 for none, then 1 min, 2 min, 4 min … capped at a day."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(seconds=min(RETRY_FIRST_SECONDS * 2 ** min(failures - 1, 20), RETRY_MAX_SECONDS))


def tracks_download_due(station: Station, now: datetime | None = None) -> QuerySet:
    """Drive tracks whose current content is not cached and may be fetched now.

    A failure holds a track back until its `download_retry_at` — or, with no retry
    time (the bytes were not audio), until its content changes in Drive.
    """
    now = now or timezone.now()
    return (tracks_download_needed(station)
            .filter(~Q(download_error_checksum=F("checksum"))
                    | Q(download_retry_at__isnull=False, download_retry_at__lte=now)))


def tracks_download_needed(station: Station) -> QuerySet:
    return (Track.objects.filter(station=station, source=Track.Source.DRIVE, missing_since__isnull=True)
            .exclude(checksum="").filter(Q(file="") | ~Q(file_checksum=F("checksum"))))


def track_download_failed(track: Track, failure: DownloadFailure,
                          now: datetime | None = None) -> Track:
    """Record on the track why its file could not be fetched, and when to try again."""
    now = now or timezone.now()
    same_content = track.download_error_checksum == track.checksum
    track.download_failures = (track.download_failures if same_content else 0) + 1
    track.download_error = failure.reason[:2000]
    track.download_error_checksum = track.checksum
    delay = backoff(track.download_failures - 1 if failure.transient else track.download_failures)
    track.download_retry_at = now + delay if failure.retry else None
    Track.objects.filter(pk=track.pk).update(
        download_error=track.download_error, download_failures=track.download_failures,
        download_error_checksum=track.download_error_checksum,
        download_retry_at=track.download_retry_at, updated_at=now)
    logger.warning("station=%s track=%s download failed (%d in a row; %s): %s", track.station.slug,
                   track.pk, track.download_failures,
                   f"next try after {track.download_retry_at.isoformat()}" if failure.retry
                   else "not tried again until the file changes in Drive", failure.reason)
    return track


def track_download_clear(track: Track) -> list[str]:
    """The file was fetched: forget past failures. Returns the fields to save."""
    fields = []
    for field, value in (("download_error", ""), ("download_failures", 0),
                         ("download_retry_at", None), ("download_error_checksum", "")):
        if getattr(track, field) != value:
            setattr(track, field, value)
            fields.append(field)
    return fields


def tracks_download_retry_now(*, actor, tracks: QuerySet) -> int:
    """Admin: fetch these tracks' files at the next sync, whatever their backoff."""
    ids = list(tracks.exclude(download_error="").values_list("pk", flat=True))
    with transaction.atomic():
        for track in Track.objects.filter(pk__in=ids).select_related("station"):
            before = snapshot(track)
            track.download_retry_at = timezone.now()
            track.download_error_checksum = ""  # also lifts a "not audio" hold
            track.save(update_fields=["download_retry_at", "download_error_checksum"])
            audit_record(actor=actor, station=track.station, action="track.retry_download",
                         obj=track, before=before, after=snapshot(track))
    return len(ids)
