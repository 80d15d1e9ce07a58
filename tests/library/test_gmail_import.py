"""Gmail import through the real client against the local fake Gmail."""

from __future__ import annotations

import pytest
from django.test import Client

from library import storage
from library.gmail import gmail_import_run, gmail_review_approve, gmail_review_reject
from library.models import GmailImport, Track
from radio.models import Role, SyncRun

pytestmark = pytest.mark.django_db


def test_commercial_by_hebrew_subject_is_imported_and_the_mail_labelled(connected_station, fake_google,
                                                                        mp3):
    gmail = fake_google.gmail
    message = gmail.add_message("sales@pizza.co.il", "פרסומת חדשה לשבוע הבא",
                                attachments=[("pizza-spot.mp3", mp3("Pizza spot"), "audio/mpeg"),
                                             ("invoice.pdf", b"%PDF", "application/pdf")])
    run = gmail_import_run(station=connected_station)
    assert run.status == SyncRun.Status.OK, run.error
    item = GmailImport.objects.get()
    assert item.status == GmailImport.Status.IMPORTED
    track = item.track
    assert (track.kind, track.source, track.title) == ("commercial", "gmail", "Pizza spot")
    assert storage.exists(track.file)
    labels = gmail.labels_of(message)
    assert "OnAir/Processed" in labels and "UNREAD" not in labels


def test_unclear_attachment_waits_for_review_then_is_approved(connected_station, fake_google, mp3,
                                                              make_user):
    fake_google.gmail.add_message("dj@friends.org", "listen to this", attachments=[
        ("demo.mp3", mp3("Demo"), "audio/mpeg")])
    gmail_import_run(station=connected_station)
    item = GmailImport.objects.get()
    assert item.status == GmailImport.Status.REVIEW and item.reason == "no rule matched"
    assert storage.exists(item.stash) and not Track.objects.exists()
    editor = make_user(Role.EDITOR, connected_station)
    track = gmail_review_approve(item=item, kind="jingle", genre=None, actor=editor)
    assert track.kind == "jingle" and track.source_id == f"{item.message_id}:{item.part_id}"
    item.refresh_from_db()
    assert item.status == GmailImport.Status.IMPORTED and item.decided_by == editor


def test_rejected_attachment_never_becomes_a_track(connected_station, fake_google, mp3, make_user):
    fake_google.gmail.add_message("x@y.z", "hello", attachments=[("x.mp3", mp3("X"), "audio/mpeg")])
    gmail_import_run(station=connected_station)
    gmail_review_reject(item=GmailImport.objects.get(), actor=make_user(Role.EDITOR, connected_station))
    assert GmailImport.objects.get().status == GmailImport.Status.REJECTED
    assert not Track.objects.exists()


def test_each_attachment_is_imported_once(connected_station, fake_google, mp3):
    gmail = fake_google.gmail
    message = gmail.add_message("jingles@studio.fm", "New jingle pack", attachments=[
        ("one.mp3", mp3("One"), "audio/mpeg"), ("two.mp3", mp3("Two"), "audio/mpeg")])
    gmail_import_run(station=connected_station)
    # Someone marks the mail unread and removes the label: it is read again
    # (with new attachment ids, as Gmail does), yet nothing is imported twice.
    gmail.messages[message]["labelIds"] = {"INBOX", "UNREAD"}
    run = gmail_import_run(station=connected_station)
    assert run.counts.get("already") == 2
    assert Track.objects.filter(kind="jingle").count() == 2
    assert GmailImport.objects.count() == 2


def test_admin_review_queue_approves_with_the_chosen_kind(connected_station, fake_google, mp3, make_user):
    fake_google.gmail.add_message("a@b.c", "fyi", attachments=[("song.mp3", mp3("Song"), "audio/mpeg")])
    gmail_import_run(station=connected_station)
    item = GmailImport.objects.get()
    editor = make_user(Role.EDITOR, connected_station, is_staff=True)
    client = Client()
    client.force_login(editor)
    assert client.get("/admin/library/gmailimport/").status_code == 200
    item.suggested_kind = "song"
    item.save()
    response = client.post("/admin/library/gmailimport/", {
        "action": "approve", "_selected_action": [item.pk]})
    assert response.status_code == 302
    assert Track.objects.get().kind == "song"


def test_gmail_access_denied_is_a_failed_run_with_a_message(connected_station, fake_google):
    fake_google.inject("/gmail/v1/users/me/labels", 403, times=1)
    run = gmail_import_run(station=connected_station)
    assert run.status == SyncRun.Status.FAILED and "HTTP 403" in run.error


def test_imported_attachment_is_uploaded_into_the_matching_drive_folder(
        connected_station, drive_root, fake_google, mp3, settings):
    from library.drive import drive_sync_run

    settings.GMAIL_UPLOAD_TO_DRIVE = True
    drive_sync_run(station=connected_station)  # knows the (empty) root
    fake_google.gmail.add_message("sales@x.co.il", "פרסומת לחג", attachments=[
        ("holiday.mp3", mp3("Holiday"), "audio/mpeg")])
    run = gmail_import_run(station=connected_station)
    assert run.status == SyncRun.Status.OK, run.error
    assert run.counts.get("uploaded_to_drive") == 1
    track = Track.objects.get()
    uploaded = fake_google.drive.files[track.source_id]
    folder = fake_google.drive.files[uploaded["parents"][0]]
    assert folder["name"] == "Commercials" and uploaded["md5Checksum"] == track.checksum
    assert (track.source, track.source_path) == ("drive", "Commercials/holiday.mp3")
    # The next Drive sync recognises it: no second copy.
    assert drive_sync_run(station=connected_station).status == SyncRun.Status.OK
    assert Track.objects.count() == 1 and Track.objects.get().kind == "commercial"
