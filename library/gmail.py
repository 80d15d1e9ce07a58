"""Gmail import: audio attachments become tracks, once each, or wait for a person's review.

Idempotent on message id + MIME part id (Gmail changes attachment ids on every
read). Classification rules (ClassificationRule, Hebrew and English defaults)
look at the subject, file name and sender; a confident match imports at once,
anything else waits in the admin's review queue. Processed mail is labelled
`OnAir/Processed` (GMAIL_PROCESSED_LABEL) and marked read. Mail the query finds
without any audio attachment is not ours to swallow: it stays unread and gets
`OnAir/No audio` (GMAIL_NO_AUDIO_LABEL), so staff see it and later runs skip it.
Runs go through the sync-run harness (radio/sync.py).
"""

from __future__ import annotations

import base64
import logging
import tempfile
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from googleapiclient.http import MediaFileUpload

from library import conventions, storage
from library.drive_tree import FOLDER_MIME
from library.models import ClassificationRule, DriveFolder, Genre, GmailImport, Track
from library.services import ImportRejected, track_import_file
from library.tags import AUDIO_EXTENSIONS
from radio.google import GoogleNotConfigured, google_execute, google_service, station_credentials
from radio.models import SyncRun
from radio.services import audit_record
from radio.sync import Progress, sync_run

logger = logging.getLogger(__name__)

DEFAULT_RULES = [
    # (field, pattern, kind)
    ("subject", "פרסומת", Track.Kind.COMMERCIAL), ("filename", "פרסומת", Track.Kind.COMMERCIAL),
    ("subject", "commercial", Track.Kind.COMMERCIAL), ("filename", "commercial", Track.Kind.COMMERCIAL),
    ("subject", "advert", Track.Kind.COMMERCIAL),
    ("subject", "ג'ינגל", Track.Kind.JINGLE), ("filename", "ג'ינגל", Track.Kind.JINGLE),
    ("subject", "jingle", Track.Kind.JINGLE), ("filename", "jingle", Track.Kind.JINGLE),
    ("subject", "מבזק", Track.Kind.NEWSFLASH), ("subject", "newsflash", Track.Kind.NEWSFLASH),
    ("subject", "תוכנית", Track.Kind.SHOW), ("subject", "episode", Track.Kind.SHOW),
    ("subject", "סמפל", Track.Kind.SAMPLE), ("subject", "sample", Track.Kind.SAMPLE),
    ("subject", "שיר", Track.Kind.SONG), ("subject", "new song", Track.Kind.SONG),
]


def rules_ensure_defaults(station) -> None:
    if not ClassificationRule.objects.filter(station=station).exists():
        ClassificationRule.objects.bulk_create(
            ClassificationRule(station=station, field=field, pattern=pattern, kind=kind,
                               priority=100 + i)
            for i, (field, pattern, kind) in enumerate(DEFAULT_RULES))


def classify(station, *, subject: str, filename: str, sender: str) -> tuple[str, Genre | None, bool, str]:
    """(kind, genre, confident, reason). Confident: rules agree on one kind."""
    texts = {"subject": subject.casefold(), "filename": filename.casefold(), "sender": sender.casefold()}
    kinds: dict[str, str] = {}
    genre = None
    for rule in ClassificationRule.objects.filter(station=station).select_related("genre"):
        if rule.pattern.casefold() in texts[rule.field]:
            if rule.kind:
                kinds.setdefault(rule.kind, f"{rule.get_field_display()} contains “{rule.pattern}”")
            if rule.genre and genre is None:
                genre = rule.genre
    if len(kinds) == 1:
        kind, reason = next(iter(kinds.items()))
        return kind, genre, True, reason
    if not kinds:
        return "", genre, False, "no rule matched"
    return next(iter(kinds)), genre, False, "rules disagree: " + ", ".join(sorted(kinds))


class Gmail:
    def __init__(self, service, run: SyncRun) -> None:
        self.users = service.users()
        self.run = run

    def execute(self, request) -> dict[str, Any]:
        return google_execute(request, self.run)

    def message_ids(self, query: str) -> list[str]:
        ids, token = [], None
        while True:
            page = self.execute(self.users.messages().list(userId="me", q=query, pageToken=token,
                                                           maxResults=100))
            ids += [m["id"] for m in page.get("messages", [])]
            token = page.get("nextPageToken")
            if not token:
                return ids

    def label_id(self, name: str) -> str:
        labels = self.execute(self.users.labels().list(userId="me")).get("labels", [])
        for label in labels:
            if label["name"] == name:
                return label["id"]
        created = self.execute(self.users.labels().create(
            userId="me", body={"name": name, "labelListVisibility": "labelShow",
                               "messageListVisibility": "show"}))
        return created["id"]


def _headers(payload: dict[str, Any]) -> dict[str, str]:
    return {h["name"].lower(): h["value"] for h in payload.get("headers", [])}


def _audio_parts(payload: dict[str, Any]):
    stack = [payload]
    while stack:
        part = stack.pop(0)
        stack.extend(part.get("parts", []))
        name = part.get("filename") or ""
        body = part.get("body", {})
        if name and body.get("attachmentId") and (
                PurePosixPath(name).suffix.lower() in AUDIO_EXTENSIONS
                or part.get("mimeType", "").startswith("audio/")):
            yield part


KIND_FOLDER_NAMES = {
    Track.Kind.SONG: "Songs", Track.Kind.SHOW: "Shows", Track.Kind.COMMERCIAL: "Commercials",
    Track.Kind.JINGLE: "Jingles", Track.Kind.SAMPLE: "Samples", Track.Kind.NEWSFLASH: "News",
}


class DriveUploader:
    """Puts imported attachments into the station's Drive, so Drive stays the source of truth."""

    def __init__(self, station, run: SyncRun) -> None:
        self.station = station
        self.run = run
        self.files = google_service("drive", "v3", station_credentials(station)).files()

    def execute(self, request) -> dict[str, Any]:
        return google_execute(request, self.run)

    def kind_folder(self, kind: str) -> tuple[DriveFolder, str]:
        """The top folder for `kind` under the first watched root (created when absent)."""
        root = DriveFolder.objects.filter(station=self.station, is_root=True).order_by("pk").first()
        if root is None:
            raise GoogleNotConfigured("No watched Drive folder to upload Gmail attachments into.")
        for folder in DriveFolder.objects.filter(station=self.station, parent_id=root.folder_id,
                                                 trashed=False):
            if conventions.KIND_BY_FOLDER.get(conventions.fold(folder.name)) == kind:
                return folder, folder.name
        name = KIND_FOLDER_NAMES[kind]
        created = self.execute(self.files.create(
            body={"name": name, "mimeType": FOLDER_MIME, "parents": [root.folder_id]}, fields="id,name"))
        folder = DriveFolder.objects.create(station=self.station, folder_id=created["id"], name=name,
                                            parent_id=root.folder_id)
        return folder, name

    def upload(self, track: Track, path: Path, filename: str) -> None:
        folder, folder_name = self.kind_folder(track.kind)
        media = MediaFileUpload(str(path), mimetype=track.mime_type or "application/octet-stream",
                                resumable=True, chunksize=8 * 1024 * 1024)
        created = self.execute(self.files.create(
            body={"name": filename, "parents": [folder.folder_id]}, media_body=media,
            fields="id,md5Checksum,modifiedTime"))
        if created.get("md5Checksum") and created["md5Checksum"] != track.checksum:
            raise storage.ChecksumMismatch(track.checksum, created["md5Checksum"])
        # From now on the track is the Drive file: syncs update it instead of adding a copy.
        Track.objects.filter(pk=track.pk).update(
            source=Track.Source.DRIVE, source_id=created["id"], source_parent=folder.folder_id,
            source_path=f"{folder_name}/{filename}",
            source_modified=parse_datetime(created["modifiedTime"]) if created.get("modifiedTime") else None)


def import_message(gmail: Gmail, station, message_id: str, counts: dict[str, int],
                   uploader: DriveUploader | None = None) -> bool:
    """Import the message's audio attachments. False when it has none."""
    message = gmail.execute(gmail.users.messages().get(userId="me", id=message_id, format="full"))
    payload = message.get("payload", {})
    headers = _headers(payload)
    subject, sender = headers.get("subject", ""), headers.get("from", "")
    try:
        received = parsedate_to_datetime(headers["date"]) if headers.get("date") else None
    except (TypeError, ValueError):
        received = None
    parts = list(_audio_parts(payload))
    if not parts:
        logger.info("station=%s gmail message=%s has no audio attachment (subject %r)",
                    station.slug, message_id, subject)
        return False
    for part in parts:
        part_id, filename = part.get("partId", ""), part["filename"]
        if GmailImport.objects.filter(station=station, message_id=message_id, part_id=part_id).exists():
            counts["already"] = counts.get("already", 0) + 1
            continue
        data = gmail.execute(gmail.users.messages().attachments().get(
            userId="me", messageId=message_id, id=part["body"]["attachmentId"]))
        raw = base64.urlsafe_b64decode(data["data"] + "=" * (-len(data["data"]) % 4))
        kind, genre, confident, reason = classify(station, subject=subject, filename=filename,
                                                  sender=sender)
        item = GmailImport(station=station, message_id=message_id, part_id=part_id, filename=filename[:300],
                           sender=sender[:300], subject=subject[:500], received_at=received,
                           suggested_kind=kind, suggested_genre=genre, reason=reason)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / (PurePosixPath(filename).name or "attachment")
            path.write_bytes(raw)
            if confident:
                try:
                    item.track = track_import_file(
                        station=station, path=path, source=Track.Source.GMAIL,
                        source_id=f"{message_id}:{part_id}", original_name=filename,
                        source_path=f"Gmail: {subject}",
                        hints={"kind": kind, **({"genre": genre} if genre else {})})
                    item.status, item.checksum = GmailImport.Status.IMPORTED, item.track.checksum
                    if uploader is not None:
                        uploader.upload(item.track, path, PurePosixPath(filename).name)
                        counts["uploaded_to_drive"] = counts.get("uploaded_to_drive", 0) + 1
                except ImportRejected as exc:
                    item.status, item.reason = GmailImport.Status.FAILED, str(exc)
            else:
                item.stash, item.checksum, _size = storage.store_copy(station.slug, path)
                item.status = GmailImport.Status.REVIEW
        item.save()
        counts[item.status] = counts.get(item.status, 0) + 1
        logger.info("station=%s gmail message=%s part=%s %s: %s", station.slug, message_id, part_id,
                    item.status, item.reason)
    return True


def _search_label(name: str) -> str:
    """A label as Gmail search writes it: `label:onair-no-audio` for "OnAir/No audio"."""
    return "-".join(name.lower().replace("/", " ").replace("-", " ").split())


def gmail_import_run(*, station) -> SyncRun | None:
    """One Gmail import through the sync-run harness. None when another one is running."""

    def body(progress: Progress) -> None:
        run, counts = progress.run, progress.counts
        rules_ensure_defaults(station)
        gmail = Gmail(google_service("gmail", "v1", station_credentials(station)), run)
        processed = gmail.label_id(settings.GMAIL_PROCESSED_LABEL)
        no_audio = gmail.label_id(settings.GMAIL_NO_AUDIO_LABEL)
        query = (f"{settings.GMAIL_QUERY} -label:{_search_label(settings.GMAIL_PROCESSED_LABEL)}"
                 f" -label:{_search_label(settings.GMAIL_NO_AUDIO_LABEL)}")
        uploader = DriveUploader(station, run) if settings.GMAIL_UPLOAD_TO_DRIVE else None
        for message_id in gmail.message_ids(query):
            if import_message(gmail, station, message_id, counts, uploader):
                # Only after every part is recorded: a crash before this re-reads the mail,
                # and the (message, part) records keep the import idempotent.
                change = {"addLabelIds": [processed], "removeLabelIds": ["UNREAD"]}
                progress.add("messages")
            else:  # not for us to swallow: left unread, labelled so staff see it
                change = {"addLabelIds": [no_audio]}
                progress.add("no_audio")
            gmail.execute(gmail.users.messages().modify(userId="me", id=message_id, body=change))
            progress.publish(messages_done=counts.get("messages", 0) + counts.get("no_audio", 0))

    return sync_run(station=station, source="gmail", kind=SyncRun.Kind.GMAIL, body=body)


def gmail_review_approve(*, item: GmailImport, kind: str, genre: Genre | None, actor) -> Track:
    """A person decided what the attachment is: import it with that kind and genre."""
    if item.status != GmailImport.Status.REVIEW:
        raise ImportRejected(f"{item.filename} is not waiting for review ({item.get_status_display()}).")
    with transaction.atomic():
        track = track_import_file(
            station=item.station, path=storage.absolute(item.stash), source=Track.Source.GMAIL,
            source_id=f"{item.message_id}:{item.part_id}", original_name=item.filename,
            source_path=f"Gmail: {item.subject}", actor=actor,
            hints={"kind": kind, **({"genre": genre} if genre else {})})
        item.status, item.track = GmailImport.Status.IMPORTED, track
        item.decided_by, item.decided_at = actor, timezone.now()
        item.save()
    return track


def gmail_review_reject(*, item: GmailImport, actor) -> None:
    with transaction.atomic():
        item.status = GmailImport.Status.REJECTED
        item.decided_by, item.decided_at = actor, timezone.now()
        item.save()
        audit_record(actor=actor, station=item.station, action="gmail.reject", obj=item,
                     after={"filename": item.filename, "subject": item.subject})
