"""Drive sync: a full crawl the first time, then the changes feed from a stored page token.

The token advances in the same transaction as the rows of its batch, so a failed
run never skips changes. Audio is fetched afterwards into the content-addressed
cache (library/storage.py): verified against Drive's md5Checksum, then renamed
into place. Renames and moves update rows without a download; removed or trashed
files are marked missing, never deleted, and come back when restored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload

from library import conventions, storage
from library.drive_tree import FOLDER_MIME, FolderTree
from library.models import DriveFolder, SyncCursor, SyncRun, Track, normalise
from library.services import track_apply, track_attach_file, track_enqueue_analysis
from library.tags import AUDIO_EXTENSIONS, NotAudio
from radio.google import GoogleNotConfigured, google_execute, google_service, station_credentials
from radio.notify import MessageType, station_notify

logger = logging.getLogger(__name__)

FILE_FIELDS = "id,name,mimeType,parents,trashed,md5Checksum,size,modifiedTime"
PAGE_SIZE = 1000
CURSOR = "drive"
HINT_FIELDS = ("kind", "genre", "artist", "show_name", "batch")


class DriveTokenExpired(Exception):
    pass


class DriveAccessDenied(Exception):
    pass


def is_audio(item: dict[str, Any]) -> bool:
    mime = item.get("mimeType", "")
    return mime.startswith("audio/") or PurePosixPath(item.get("name", "")).suffix.lower() in AUDIO_EXTENSIONS


@dataclass
class Progress:
    run: SyncRun
    counts: dict[str, int] = field(default_factory=dict)
    last_sent: float = 0.0

    def add(self, name: str, n: int = 1) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n

    def publish(self, *, force: bool = False, **progress: Any) -> None:
        self.run.progress.update(progress)
        now = time.monotonic()
        if not force and now - self.last_sent < 1.0:
            return
        self.last_sent = now
        self.run.counts = dict(self.counts)
        SyncRun.objects.filter(pk=self.run.pk).update(counts=self.run.counts,
                                                      progress=self.run.progress,
                                                      requests=self.run.requests)
        station_notify(self.run.station.slug, MessageType.LIBRARY_SYNC, sync_run_data(self.run))


def sync_run_data(run: SyncRun) -> dict[str, Any]:
    return {"run": run.pk, "kind": run.kind, "status": run.status, "counts": run.counts,
            "progress": run.progress, "requests": run.requests, "error": run.error,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None}


class Drive:
    """The Drive calls a sync makes, counted, with retries of 429/5xx/timeouts."""

    def __init__(self, service, run: SyncRun) -> None:
        self.files = service.files()
        self.changes = service.changes()
        self.run = run

    def execute(self, request) -> dict[str, Any]:
        return google_execute(request, self.run)

    def list_children(self, folder_id: str):
        token = None
        while True:
            page = self.execute(self.files.list(
                q=f"'{folder_id}' in parents and trashed = false", pageSize=PAGE_SIZE,
                pageToken=token, fields=f"nextPageToken,files({FILE_FIELDS})",
                supportsAllDrives=True, includeItemsFromAllDrives=True))
            yield page.get("files", [])
            token = page.get("nextPageToken")
            if not token:
                return

    def get(self, file_id: str) -> dict[str, Any]:
        return self.execute(self.files.get(fileId=file_id, fields=FILE_FIELDS,
                                           supportsAllDrives=True))

    def start_token(self) -> str:
        return self.execute(self.changes.getStartPageToken(supportsAllDrives=True))["startPageToken"]

    def changes_page(self, token: str) -> dict[str, Any]:
        try:
            return self.execute(self.changes.list(
                pageToken=token, pageSize=PAGE_SIZE, includeRemoved=True,
                supportsAllDrives=True, includeItemsFromAllDrives=True,
                fields=f"nextPageToken,newStartPageToken,changes(fileId,removed,file({FILE_FIELDS}))"))
        except HttpError as exc:
            if exc.resp.status in (400, 404, 410):
                raise DriveTokenExpired(f"page token {token} refused with HTTP {exc.resp.status}") from exc
            raise


class Syncer:
    def __init__(self, station, drive: Drive, progress: Progress) -> None:
        self.station = station
        self.drive = drive
        self.progress = progress
        self.tree = FolderTree(station)
        self.genres: dict[str, Any] = {}

    # --- hints from folders -------------------------------------------------

    def hints_for(self, chain: list[DriveFolder]) -> dict[str, Any]:
        hints = conventions.classify(self.tree.path_parts(chain))
        hints = conventions.apply_overrides(hints, chain)
        return conventions.resolve_genre(self.station, hints, self.genres)

    def ensure_chain(self, parent_id: str) -> list[DriveFolder] | None:
        """The folder chain of a parent, fetching unknown ancestors from Drive (rare)."""
        seen = 0
        folder_id = parent_id
        while self.tree.get(folder_id) is None and folder_id and seen < 50:
            try:
                meta = self.drive.get(folder_id)
            except HttpError as exc:
                if exc.resp.status == 404:
                    return None
                raise
            parents = meta.get("parents") or [""]
            self.tree.upsert(folder_id, meta.get("name", ""), parents[0], bool(meta.get("trashed")))
            folder_id = parents[0]
            seen += 1
        return self.tree.chain(parent_id)

    # --- files -------------------------------------------------------------

    def apply_files(self, items: list[dict[str, Any]], seen: set[str] | None = None) -> None:
        """Create, update, move, restore or mark missing the tracks of these Drive files."""
        ids = [item["id"] for item in items]
        existing = {t.source_id: t for t in Track.objects.filter(
            station=self.station, source=Track.Source.DRIVE, source_id__in=ids)}
        new, changed_tracks, changed_fields = [], [], set()
        for item in items:
            track = existing.get(item["id"])
            parent = (item.get("parents") or [""])[0]
            chain = None if item.get("trashed") else self.ensure_chain(parent)
            if chain is None:
                if track is not None and track.missing_since is None:
                    track.missing_since = timezone.now()
                    changed_tracks.append(track)
                    changed_fields.add("missing_since")
                    self.progress.add("missing")
                continue
            if not is_audio(item):
                self.progress.add("skipped")
                logger.debug("station=%s drive file=%s skipped: not audio (%s)", self.station.slug,
                             item["id"], item.get("mimeType"))
                continue
            if seen is not None:
                seen.add(item["id"])
            values = self.track_values(item, chain)
            if track is None:
                track = Track(station=self.station, source=Track.Source.DRIVE, source_id=item["id"],
                              title=PurePosixPath(item["name"]).stem[:300])
                for key, value in values.items():
                    setattr(track, key, value)
                track.dedupe_key = ""
                new.append(track)
                self.progress.add("added")
                continue
            fields = track_apply(track, {k: v for k, v in values.items() if k in HINT_FIELDS})
            for key in ("source_path", "source_parent", "source_modified", "checksum", "size"):
                if getattr(track, key) != values[key]:
                    setattr(track, key, values[key])
                    fields.append(key)
            if track.missing_since is not None:
                track.missing_since = None
                fields.append("missing_since")
                self.progress.add("restored")
            if "checksum" in fields:
                self.progress.add("content_changed")
            elif {"source_path", "source_parent"} & set(fields):
                self.progress.add("moved")
            if fields:
                changed_tracks.append(track)
                changed_fields.update(fields)
        if new:
            for track in new:
                track.dedupe_key = f"{normalise(track.artist)}|{normalise(track.title)}"
            Track.objects.bulk_create(new, batch_size=1000)
        if changed_tracks:
            if {"artist", "title"} & changed_fields:
                for track in changed_tracks:
                    track.dedupe_key = (f"{normalise(track.artist)}|"
                                        f"{normalise(track.title)}")
                changed_fields.add("dedupe_key")
            Track.objects.bulk_update(changed_tracks, sorted(changed_fields | {"updated_at"}),
                                      batch_size=1000)
            self.progress.add("updated", len(changed_tracks))

    def track_values(self, item: dict[str, Any], chain: list[DriveFolder]) -> dict[str, Any]:
        hints = self.hints_for(chain)
        values: dict[str, Any] = {key: hints[key] for key in HINT_FIELDS if key in hints}
        values.update(
            source_path="/".join([*self.tree.path_parts(chain), item["name"]]),
            source_parent=chain[-1].folder_id,
            source_modified=parse_datetime(item["modifiedTime"]) if item.get("modifiedTime") else None,
            checksum=item.get("md5Checksum", ""),
            size=int(item["size"]) if item.get("size") else None,
        )
        return values

    def rederive_subtree(self, folder_id: str) -> None:
        """A folder was renamed or moved: paths and folder-derived fields of tracks beneath change."""
        ids = self.tree.descendants(folder_id)
        tracks = list(Track.objects.filter(station=self.station, source=Track.Source.DRIVE,
                                           source_parent__in=ids))
        if not tracks:
            return
        items = [{"id": t.source_id, "name": PurePosixPath(t.source_path).name,
                  "parents": [t.source_parent], "mimeType": t.mime_type or "audio/mpeg",
                  "md5Checksum": t.checksum, "size": str(t.size) if t.size else None,
                  "modifiedTime": t.source_modified.isoformat() if t.source_modified else None}
                 for t in tracks]
        self.apply_files(items)

    # --- full crawl -----------------------------------------------------------

    def full_crawl(self) -> str:
        roots = self.tree.roots
        if not roots:
            raise GoogleNotConfigured(
                f"Station {self.station.slug} watches no Drive folder: add one in the admin "
                "(Library → Drive folders, 'watched root') or set GOOGLE_DRIVE_ROOT_FOLDER.")
        start_token = self.drive.start_token()  # before crawling: nothing slips between
        seen: set[str] = set()
        queue = []
        for root in roots:
            meta = self.drive.get(root.folder_id)
            self.tree.upsert(root.folder_id, meta.get("name", root.name),
                             (meta.get("parents") or [""])[0], False)
            queue.append(root.folder_id)
        folders_done = 0
        while queue:
            folder_id = queue.pop(0)
            for page in self.drive.list_children(folder_id):
                for item in page:
                    if item.get("mimeType") == FOLDER_MIME:
                        self.tree.upsert(item["id"], item["name"], folder_id, False)
                        queue.append(item["id"])
                files = [item for item in page if item.get("mimeType") != FOLDER_MIME]
                with transaction.atomic():
                    self.tree.save()
                    self.apply_files(files, seen)
                self.progress.publish(folders_done=folders_done, folders_queued=len(queue),
                                      files_seen=len(seen))
            folders_done += 1
        with transaction.atomic():
            gone = (Track.objects.filter(station=self.station, source=Track.Source.DRIVE,
                                         missing_since__isnull=True)
                    .exclude(source_id__in=seen) if len(seen) < 50_000 else None)
            if gone is None:  # large libraries: compare in Python instead of a huge NOT IN
                known = Track.objects.filter(station=self.station, source=Track.Source.DRIVE,
                                             missing_since__isnull=True).values_list("pk", "source_id")
                gone_ids = [pk for pk, source_id in known if source_id not in seen]
                gone = Track.objects.filter(pk__in=gone_ids)
            self.progress.add("missing", gone.update(missing_since=timezone.now()))
            self.save_cursor(start_token)
        return start_token

    # --- changes feed -------------------------------------------------------

    def apply_changes(self, token: str) -> None:
        while True:
            page = self.drive.changes_page(token)
            changes = page.get("changes", [])
            with transaction.atomic():
                files, renamed_folders, folder_trash = [], [], []
                for change in changes:
                    item = change.get("file")
                    if change.get("removed") or item is None:
                        self.mark_removed(change["fileId"])
                        continue
                    if item.get("mimeType") == FOLDER_MIME:
                        folder = self.tree.get(item["id"])
                        was_trashed = folder.trashed if folder else False
                        parent = (item.get("parents") or [""])[0]
                        if self.tree.upsert(item["id"], item["name"], parent, bool(item.get("trashed"))):
                            renamed_folders.append(item["id"])
                            if was_trashed != bool(item.get("trashed")):
                                folder_trash.append(item["id"])
                        continue
                    files.append(item)
                self.tree.save()
                if files:
                    self.apply_files(files)
                for folder_id in renamed_folders:
                    self.rederive_subtree(folder_id)
                self.progress.add("changes", len(changes))
                next_token = page.get("nextPageToken") or page.get("newStartPageToken")
                self.save_cursor(next_token)
            self.progress.publish(changes_seen=self.progress.counts.get("changes", 0))
            if "newStartPageToken" in page and not page.get("nextPageToken"):
                return
            token = next_token

    def mark_removed(self, file_id: str) -> None:
        updated = Track.objects.filter(station=self.station, source=Track.Source.DRIVE, source_id=file_id,
                                       missing_since__isnull=True).update(missing_since=timezone.now())
        self.progress.add("missing", updated)
        folder = self.tree.get(file_id)
        if folder is not None and not folder.trashed:
            self.tree.upsert(file_id, folder.name, folder.parent_id, True)
            self.tree.save()
            self.rederive_subtree(file_id)

    def save_cursor(self, token: str) -> None:
        SyncCursor.objects.update_or_create(station=self.station, source=CURSOR, defaults={"token": token})

    # --- downloads ----------------------------------------------------------

    def download_pending(self) -> None:
        pending = (Track.objects.filter(station=self.station, source=Track.Source.DRIVE,
                                        missing_since__isnull=True)
                   .exclude(checksum="").filter(Q(file="") | ~Q(file_checksum=F("checksum")))
                   .select_related("station"))
        total = pending.count()
        for done, track in enumerate(pending.iterator(chunk_size=200), start=1):
            self.download_one(track)
            self.progress.publish(downloads_done=done, downloads_total=total)

    def download_one(self, track: Track) -> bool:
        ext = PurePosixPath(track.source_path).suffix.lower() or ".mp3"
        rel = storage.relative_path(self.station.slug, track.checksum, ext)
        try:
            if storage.exists(rel):  # same content already cached (content-addressed)
                md5, size = track.checksum, storage.absolute(rel).stat().st_size
            else:
                request = self.drive.files.get_media(fileId=track.source_id, supportsAllDrives=True)

                def write(writer) -> None:
                    downloader = MediaIoBaseDownload(writer, request, chunksize=8 * 1024 * 1024)
                    done = False
                    while not done:
                        self.drive.run.requests += 1
                        _status, done = downloader.next_chunk(num_retries=settings.GOOGLE_API_RETRIES)

                rel, md5, size = storage.store(self.station.slug, ext, write, expected_md5=track.checksum)
            with transaction.atomic():
                track = Track.objects.select_for_update().get(pk=track.pk)
                chain = self.tree.chain(track.source_parent)
                hints = self.hints_for(chain) if chain else {}
                track_attach_file(track, rel=rel, md5=md5, size=size,
                                  original_name=PurePosixPath(track.source_path).name,
                                  hints={k: v for k, v in hints.items() if k in HINT_FIELDS})
                track.save()
                transaction.on_commit(lambda pk=track.pk: track_enqueue_analysis(pk))
            self.progress.add("downloaded")
            return True
        except storage.ChecksumMismatch as exc:
            reason = f"download did not match Drive's checksum ({exc})"
        except NotAudio as exc:
            track.analysis, track.analysis_error = Track.Analysis.FAILED, f"not playable audio: {exc}"
            track.file, track.file_checksum = rel, track.checksum
            track.save(update_fields=["analysis", "analysis_error", "file", "file_checksum"])
            self.progress.add("unplayable")
            logger.warning("station=%s track=%s flagged: %s", self.station.slug, track.pk, exc)
            return False
        except HttpError as exc:
            if exc.resp.status in (401, 403):
                raise
            reason = f"HTTP {exc.resp.status}"
        except (TimeoutError, OSError) as exc:  # truncated or interrupted download
            reason = f"interrupted: {exc}"
        except Exception as exc:  # noqa: BLE001 - e.g. http.client.IncompleteRead; retried next run
            reason = f"{type(exc).__name__}: {exc}"
        self.progress.add("download_failed")
        logger.warning("station=%s track=%s download failed, will retry: %s", self.station.slug,
                       track.pk, reason)
        return False


def _access_message(exc: HttpError) -> str:
    return (f"Google refused access (HTTP {exc.resp.status}): {_reason(exc)}. Share the Drive folder "
            "with the service account, or reconnect Google in the admin (Library → Google connections).")


def _reason(exc: HttpError) -> str:
    try:
        return exc.error_details[0]["message"] if exc.error_details else exc.reason
    except (AttributeError, IndexError, KeyError, TypeError):
        return str(exc)


def drive_sync_run(*, station, triggered_by_id: int | None = None) -> SyncRun | None:
    """Run one sync of the station. Returns None when another sync of it is running."""
    lock = f"onair:drive-sync:{station.pk}"
    if not cache.add(lock, "1", timeout=settings.CELERY_TASK_TIME_LIMIT):
        logger.info("station=%s drive sync skipped: another is running", station.slug)
        return None
    if settings.GOOGLE_DRIVE_ROOT_FOLDER and station.slug == settings.ONAIR_DEFAULT_STATION_SLUG:
        DriveFolder.objects.get_or_create(station=station, folder_id=settings.GOOGLE_DRIVE_ROOT_FOLDER,
                                          defaults={"is_root": True})
    cursor = SyncCursor.objects.filter(station=station, source=CURSOR).first()
    run = SyncRun.objects.create(station=station, triggered_by_id=triggered_by_id,
                                 kind=SyncRun.Kind.DRIVE_CHANGES if cursor else SyncRun.Kind.DRIVE_FULL)
    progress = Progress(run)
    progress.publish(force=True)
    try:
        drive = Drive(google_service("drive", "v3", station_credentials(station)), run)
        syncer = Syncer(station, drive, progress)
        if cursor is None:
            syncer.full_crawl()
        else:
            try:
                syncer.apply_changes(cursor.token)
            except DriveTokenExpired as exc:
                logger.warning("station=%s %s: full resync", station.slug, exc)
                run.kind = SyncRun.Kind.DRIVE_FULL
                progress.add("token_expired")
                syncer.full_crawl()
        syncer.download_pending()
        run.status = SyncRun.Status.OK
    except GoogleNotConfigured as exc:
        run.status, run.error = SyncRun.Status.FAILED, str(exc)
    except HttpError as exc:
        run.status = SyncRun.Status.FAILED
        run.error = (_access_message(exc) if exc.resp.status in (401, 403)
                     else f"Google answered HTTP {exc.resp.status} after retries: {_reason(exc)}")
    except (TimeoutError, OSError) as exc:
        run.status, run.error = SyncRun.Status.FAILED, f"Could not reach Google: {exc}"
    except Exception as exc:
        run.status, run.error = SyncRun.Status.FAILED, f"Unexpected error: {exc}"
        logger.exception("station=%s drive sync run=%s crashed", station.slug, run.pk)
    finally:
        cache.delete(lock)
        run.finished_at = timezone.now()
        run.counts = dict(progress.counts)
        run.save()
        if run.status == SyncRun.Status.FAILED:
            logger.error("station=%s drive sync run=%s failed: %s", station.slug, run.pk, run.error)
        else:
            logger.info("station=%s drive sync run=%s ok: %s (%s requests)", station.slug, run.pk,
                        run.counts, run.requests)
        progress.publish(force=True)
    return run
