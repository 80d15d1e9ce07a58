"""Drive sync: a full crawl the first time, then the changes feed from a stored page token.

The token advances in the same transaction as the rows of its batch, so a failed
run never skips changes. Audio is fetched afterwards into the content-addressed
cache (library/storage.py): verified against Drive's md5Checksum, then renamed
into place. Renames and moves update rows without a download; removed or trashed
files are marked missing, never deleted, and come back when restored.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import ngettext
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload

from library import conventions, storage, tags
from library.downloads import (
    DownloadsPaused,
    download_failure,
    track_download_clear,
    track_download_failed,
    tracks_download_due,
    tracks_download_needed,
)
from library.drive_tree import (
    FOLDER_MIME,
    SHORTCUT_MIME,
    SHORTCUT_TARGET_KNOWN,
    SHORTCUT_TO_AUDIO,
    SHORTCUT_TO_FOLDER,
    FolderTree,
    file_stem,
    join_path,
    own_trash,
    split_path,
)
from library.models import DriveFolder, Track
from library.services import genre_for, track_apply, track_attach_file, track_enqueue_analysis
from library.tags import AUDIO_EXTENSIONS, display_text, sniff_extension
from radio.google import GoogleNotConfigured, google_execute, google_service, station_credentials
from radio.models import SyncCursor, SyncRun
from radio.sync import Progress, sync_run

logger = logging.getLogger(__name__)

FILE_FIELDS = ("id,name,mimeType,parents,trashed,explicitlyTrashed,md5Checksum,size,modifiedTime,"
               "shortcutDetails")
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
        self.skipped: list[dict[str, str]] = []  # shortcuts, listed in the run's progress

    # --- hints from folders -------------------------------------------------

    def hints_for(self, chain: list[DriveFolder]) -> dict[str, Any]:
        hints = conventions.classify(self.tree.path_parts(chain))
        hints = conventions.apply_overrides(hints, chain)
        hints = conventions.resolve_genre(self.station, hints, self.genres)
        return conventions.complete(hints)

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
            parent = self.tree.pick_parent(meta.get("parents") or [])
            self.tree.upsert(folder_id, meta.get("name", ""), parent, own_trash(meta))
            folder_id = parent
            seen += 1
        return self.tree.chain(parent_id)

    def place(self, parents: list[str], prefer: list[str] | tuple[str, ...] = (),
              fetch: bool = True) -> tuple[str, list[DriveFolder]] | None:
        """(parent, chain) of a file in the library: any of its parents will do (legacy files
        may have several, in no order). Known folders first, so a crawl asks Drive nothing."""
        ordered = list(dict.fromkeys([*(p for p in prefer if p in parents), *parents]))
        for parent in ordered:
            chain = self.tree.chain(parent)
            if chain is not None:
                return parent, chain
        for parent in ordered if fetch else ():
            if self.tree.get(parent) is None:
                chain = self.ensure_chain(parent)
                if chain is not None:
                    return parent, chain
        return None

    # --- files -------------------------------------------------------------

    def apply_files(self, items: list[dict[str, Any]], seen: set[str] | None = None,
                    listed_in: str = "") -> None:
        """Create, update, move, restore or mark missing the tracks of these Drive files.

        Only Drive's word about a file restores it: this item, listed or changed."""
        items = list({item["id"]: item for item in items}.values())  # a page may list a file twice
        ids = [item["id"] for item in items]
        existing = {t.source_id: t for t in Track.objects.filter(
            station=self.station, source=Track.Source.DRIVE, source_id__in=ids).select_related("genre")}
        new, changed = [], []
        for item in items:
            track = existing.get(item["id"])
            prefer = [p for p in (track.source_parent if track else "", listed_in) if p]
            placed = None if item.get("trashed") else self.place(item.get("parents") or [], prefer)
            if placed is not None and item.get("mimeType") == SHORTCUT_MIME:
                self.skip_shortcut(item, placed[1])
                placed = None  # not a file of its own: a track made for it before goes missing
            if placed is None:
                if track is not None and track.missing_since is None:
                    track.missing_since = timezone.now()
                    changed.append((track, ["missing_since"]))
                    self.progress.add("missing")
                continue
            if not is_audio(item):
                self.progress.add("skipped")
                logger.debug("station=%s drive file=%s skipped: not audio (%s)", self.station.slug,
                             item["id"], item.get("mimeType"))
                continue
            if seen is not None:
                seen.add(item["id"])
            values = self.track_values(item, *placed)
            if track is None:
                track = Track(station=self.station, source=Track.Source.DRIVE, source_id=item["id"],
                              title=display_text(file_stem(item["name"]))[:300])
                self.derive(track, values)
                new.append(track)
                self.progress.add("added")
                continue
            fields = self.derive(track, values)
            if track.missing_since is not None:
                track.missing_since = None
                fields.append("missing_since")
                self.progress.add("restored")
            if "checksum" in fields:
                self.progress.add("content_changed")
            elif {"source_path", "source_parent"} & set(fields):
                self.progress.add("moved")
            if fields:
                changed.append((track, fields))
        if new:
            for track in new:
                track.derive_keys()
            Track.objects.bulk_create(new, batch_size=1000)
        self.save_tracks(changed)

    def save_tracks(self, changed: list[tuple[Track, list[str]]]) -> None:
        if not changed:
            return
        fields = {name for _track, names in changed for name in names}
        tracks = [track for track, _names in changed]
        derived = Track.derived_fields(fields)
        if derived:
            for track in tracks:
                track.derive_keys()
            fields |= derived
        Track.objects.bulk_update(tracks, sorted(fields | {"updated_at"}), batch_size=1000)
        self.progress.add("updated", len(tracks))

    def track_values(self, item: dict[str, Any], parent: str, chain: list[DriveFolder]) -> dict[str, Any]:
        values = self.folder_values(item["name"], item.get("parents") or [parent], parent, chain)
        values.update(
            source_modified=parse_datetime(item["modifiedTime"]) if item.get("modifiedTime") else None,
            checksum=item.get("md5Checksum", ""),
            size=int(item["size"]) if item.get("size") else None,
        )
        return values

    def folder_values(self, name: str, parents: list[str], parent: str,
                      chain: list[DriveFolder]) -> dict[str, Any]:
        """What the file's place decides: folder fields, path, name and parents."""
        hints = self.hints_for(chain)
        values: dict[str, Any] = {key: hints[key] for key in conventions.FOLDER_FIELDS if key in hints}
        values.update(source_path=join_path([*self.tree.path_parts(chain), name]), source_name=name,
                      source_parent=parent, source_parents=list(parents))
        return values

    def derive(self, track: Track, values: dict[str, Any]) -> list[str]:
        """Apply what the folders and Drive say. A folder field a folder gave before and none
        gives now goes back to what the file's tags say, else blank (a field the new kind does
        not take is blank already); fields edited by hand are left alone. Returns what changed."""
        hints = {key: value for key, value in values.items() if key in conventions.FOLDER_FIELDS}
        decided = sorted(hints)
        undecided = [name for name in track.folder_fields or []
                     if name in conventions.BLANK and name not in hints]
        if undecided:
            hints.update(self.own_values(track, undecided))
        fields = track_apply(track, hints)
        for key, value in values.items():
            if key not in conventions.FOLDER_FIELDS and getattr(track, key) != value:
                setattr(track, key, value)
                fields.append(key)
        if (track.folder_fields or []) != decided:
            track.folder_fields = decided
            fields.append("folder_fields")
        return fields

    def own_values(self, track: Track, names: list[str]) -> dict[str, Any]:
        """What the file itself says for these fields (its tags), else their blank."""
        values = {name: conventions.BLANK[name] for name in names}
        if track.file and {"artist", "genre"} & set(names):
            try:
                info = tags.read(storage.absolute(track.file))
            except (tags.NotAudio, OSError) as exc:
                logger.info("station=%s track=%s tags unreadable, fields blanked: %s",
                            self.station.slug, track.pk, exc)
            else:
                if "artist" in values and info.artist:
                    values["artist"] = info.artist[:300]
                if "genre" in values and info.genre:
                    values["genre"] = genre_for(self.station, info.genre)
        return values

    def rederive_subtree(self, folder_id: str) -> None:
        """A folder was renamed, moved, trashed or restored: paths and folder-derived fields of
        tracks beneath change, and those no longer in the library go missing.

        This never brings a track back: a file trashed or deleted on its own stays missing
        until Drive says otherwise (a change of the file, or a crawl that lists it)."""
        ids = self.tree.descendants(folder_id)
        tracks = Track.objects.filter(station=self.station, source=Track.Source.DRIVE,
                                      source_parent__in=ids).select_related("genre")
        changed = []
        for track in tracks.iterator(chunk_size=1000):
            parents = track.source_parents or [track.source_parent]
            placed = self.place(parents, [track.source_parent], fetch=False)
            if placed is None:
                if track.missing_since is None:
                    track.missing_since = timezone.now()
                    changed.append((track, ["missing_since"]))
                    self.progress.add("missing")
                continue
            name = track.source_name or split_path(track.source_path)[-1]
            fields = self.derive(track, self.folder_values(name, parents, *placed))
            if fields:
                changed.append((track, fields))
                if {"source_path", "source_parent"} & set(fields):
                    self.progress.add("moved")
        self.save_tracks(changed)

    def skip_shortcut(self, item: dict[str, Any], chain: list[DriveFolder]) -> None:
        """Shortcuts are not followed: one to audio or a folder is listed in the run with why."""
        details = item.get("shortcutDetails") or {}
        target, target_mime = details.get("targetId", ""), details.get("targetMimeType", "")
        if target_mime == FOLDER_MIME:
            reason = SHORTCUT_TO_FOLDER
        elif target_mime.startswith("audio/") or is_audio({"name": item["name"]}):
            known = Track.objects.filter(station=self.station, source=Track.Source.DRIVE,
                                         source_id=target, missing_since__isnull=True).exists()
            reason = SHORTCUT_TARGET_KNOWN if known else SHORTCUT_TO_AUDIO
        else:
            self.progress.add("skipped")
            return
        self.progress.add("shortcuts_skipped")
        path = join_path([*self.tree.path_parts(chain), item["name"]])
        if len(self.skipped) < 100 and all(s["id"] != item["id"] for s in self.skipped):
            self.skipped.append({"id": item["id"], "path": path, "target": target,
                                 "reason": str(reason)})
            self.progress.publish(skipped=self.skipped)
        logger.warning("station=%s drive shortcut=%s (%s → %s) skipped: %s", self.station.slug,
                       item["id"], path, target, reason)

    # --- crawls -------------------------------------------------------------------

    def full_crawl(self) -> str:
        roots = self.tree.roots
        if not roots:
            raise GoogleNotConfigured(
                f"Station {self.station.slug} watches no Drive folder: add one in the admin "
                "(Library → Drive folders, 'watched root') or set GOOGLE_DRIVE_ROOT_FOLDER.")
        start_token = self.drive.start_token()  # before crawling: nothing slips between
        for root in roots:
            meta = self.drive.get(root.folder_id)
            self.tree.upsert(root.folder_id, meta.get("name", root.name),
                             self.tree.pick_parent(meta.get("parents") or []), own_trash(meta))
        seen = self.crawl([root.folder_id for root in roots])
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

    def crawl(self, folder_ids: list[str]) -> set[str]:
        """List these folders and all beneath them; the ids of the audio files seen."""
        seen: set[str] = set()
        queued = set(folder_ids)
        queue = [f for f in folder_ids if self.tree.visible(f)]
        folders_done = 0
        while queue:
            folder_id = queue.pop(0)
            for page in self.drive.list_children(folder_id):
                for item in page:
                    if item.get("mimeType") == FOLDER_MIME and item["id"] not in queued:
                        # Listed here, untrashed: in the library through this folder (the
                        # first listing wins for a legacy folder with several parents).
                        self.tree.upsert(item["id"], item["name"], folder_id, False)
                        queued.add(item["id"])
                        queue.append(item["id"])
                files = [item for item in page if item.get("mimeType") != FOLDER_MIME]
                with transaction.atomic():
                    self.tree.save()
                    self.apply_files(files, seen, listed_in=folder_id)
                self.progress.publish(folders_done=folders_done, folders_queued=len(queue),
                                      files_seen=len(seen))
            folders_done += 1
        return seen

    def crawl_arrived(self, folder_ids: list[str]) -> None:
        """Folders that came into the library (moved in, restored): the changes feed reports
        the folder alone, so list what is inside. Tracks beneath that the listing does not
        show (trashed or deleted on their own meanwhile) stay or go missing."""
        seen = self.crawl(folder_ids)
        beneath = set().union(*(self.tree.descendants(f) for f in folder_ids))
        gone = (Track.objects.filter(station=self.station, source=Track.Source.DRIVE,
                                     source_parent__in=beneath, missing_since__isnull=True)
                .exclude(source_id__in=seen))
        self.progress.add("missing", gone.update(missing_since=timezone.now()))
        self.progress.add("folders_arrived", len(folder_ids))

    # --- changes feed -------------------------------------------------------

    def apply_changes(self, token: str) -> None:
        while True:
            page = self.drive.changes_page(token)
            changes = page.get("changes", [])
            with transaction.atomic():
                folders, files = [], []
                for change in changes:
                    item = change.get("file")
                    if change.get("removed") or item is None:
                        self.mark_removed(change["fileId"])
                    elif item.get("mimeType") == FOLDER_MIME:
                        folders.append(item)
                    else:
                        files.append(item)
                self.apply_page(folders, files)
                self.progress.add("changes", len(changes))
                next_token = page.get("nextPageToken") or page.get("newStartPageToken")
                self.save_cursor(next_token)  # with the rows: a failed page is read again
            self.progress.publish(changes_seen=self.progress.counts.get("changes", 0))
            if "newStartPageToken" in page and not page.get("nextPageToken"):
                return
            token = next_token

    def apply_page(self, folders: list[dict[str, Any]], files: list[dict[str, Any]]) -> None:
        """One page's folder and file changes: folders first (a file may sit in a new one)."""
        was_visible = {item["id"]: self.tree.visible(item["id"]) for item in folders}
        changed = []
        for item in folders:
            parent = self.tree.pick_parent(item.get("parents") or [])
            if self.tree.upsert(item["id"], item["name"], parent, own_trash(item)):
                changed.append(item["id"])
        self.tree.save()
        arrived = [f for f in dict.fromkeys(changed) if not was_visible[f] and self.tree.visible(f)]
        outermost = [f for f in arrived
                     if not any(c.folder_id in arrived for c in self.tree.chain(f)[:-1])]
        if files:
            self.apply_files(files)
        for folder_id in dict.fromkeys(changed):
            if was_visible[folder_id] and folder_id not in arrived:
                self.rederive_subtree(folder_id)  # renamed, moved within, or left the library
        if outermost:
            self.crawl_arrived(outermost)

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
        """Fetch the files not cached yet, each on its own (library/downloads.py).

        A file that fails is recorded on its track and tried again after its backoff;
        the others go on. A rate limit stops the downloads until the next run.
        """
        now = timezone.now()
        pending = (tracks_download_due(self.station, now).select_related("station")
                   .order_by("download_failures", "pk"))
        total = pending.count()
        waiting = tracks_download_needed(self.station).count() - total
        self.progress.add("download_waiting", waiting)
        failed = 0
        for done, track in enumerate(pending.iterator(chunk_size=200), start=1):
            try:
                failed += not self.download_one(track)
            except DownloadsPaused as exc:
                self.progress.add("download_postponed", total - done + 1)
                logger.warning("station=%s downloads stopped for this run, %d left for the next: %s",
                               self.station.slug, total - done + 1, exc)
                break
            self.progress.publish(downloads_done=done, downloads_total=total)
        if failed or waiting:
            self.progress.publish(force=True, downloads_not_fetched=failed + waiting, notice=ngettext(
                "%(count)d file could not be downloaded (Library → Tracks, filter "
                "\"download failed\": the reason is on each track).",
                "%(count)d files could not be downloaded (Library → Tracks, filter "
                "\"download failed\": the reason is on each track).",
                failed + waiting) % {"count": failed + waiting})

    def download_one(self, track: Track) -> bool:
        """Fetch one track's file; False (recorded on the track) when that file failed."""
        try:
            rel = storage.find(self.station.slug, track.checksum)  # content-addressed
            if rel:
                md5, size = track.checksum, storage.absolute(rel).stat().st_size
            else:
                request = self.drive.files.get_media(fileId=track.source_id, supportsAllDrives=True)

                def write(writer) -> None:
                    downloader = MediaIoBaseDownload(writer, request, chunksize=8 * 1024 * 1024)
                    done = False
                    while not done:
                        self.drive.run.requests += 1
                        _status, done = downloader.next_chunk(num_retries=settings.GOOGLE_API_RETRIES)

                # The extension (and the type served) come from the bytes, not the name.
                rel, md5, size = storage.store(self.station.slug, sniff_extension, write,
                                               expected_md5=track.checksum)
            with transaction.atomic():
                track = Track.objects.select_for_update().select_related("station").get(pk=track.pk)
                chain = self.tree.chain(track.source_parent)
                hints = self.hints_for(chain) if chain else {}
                track_attach_file(track, rel=rel, md5=md5, size=size,
                                  original_name=track.source_name or split_path(track.source_path)[-1],
                                  hints={k: v for k, v in hints.items() if k in HINT_FIELDS})
                track_download_clear(track)
                track.save()
                transaction.on_commit(lambda pk=track.pk: track_enqueue_analysis(pk))
            self.progress.add("downloaded")
            return True
        except Exception as exc:  # noqa: BLE001 - download_failure re-raises what is not the file's
            failure = download_failure(exc)
        track_download_failed(track, failure)
        self.progress.add("download_failed" if failure.retry else "not_audio")
        return False

def drive_sync_run(*, station, triggered_by_id: int | None = None) -> SyncRun | None:
    """One sync of the station through the sync-run harness (radio/sync.py).

    Returns None when another Drive sync of the station is running.
    """
    if settings.GOOGLE_DRIVE_ROOT_FOLDER and station.slug == settings.ONAIR_DEFAULT_STATION_SLUG:
        DriveFolder.objects.get_or_create(station=station, folder_id=settings.GOOGLE_DRIVE_ROOT_FOLDER,
                                          defaults={"is_root": True})
    has_cursor = SyncCursor.objects.filter(station=station, source=CURSOR).exists()

    def body(progress: Progress) -> None:
        run = progress.run
        # Read under the lease: a run that finished meanwhile may have moved it.
        cursor = SyncCursor.objects.filter(station=station, source=CURSOR).first()
        run.kind = SyncRun.Kind.DRIVE_CHANGES if cursor else SyncRun.Kind.DRIVE_FULL
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

    return sync_run(station=station, source="drive", triggered_by_id=triggered_by_id, body=body,
                    kind=SyncRun.Kind.DRIVE_CHANGES if has_cursor else SyncRun.Kind.DRIVE_FULL)
