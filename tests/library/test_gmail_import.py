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


def test_cut_attachment_download_fails_the_run_instead_of_leaving_it_running(connected_station,
                                                                             fake_google, mp3):
    # Before the sync-run harness, IncompleteRead escaped every except clause and the
    # run stayed "running" for ever, with no error.
    gmail = fake_google.gmail
    message = gmail.add_message("sales@pizza.co.il", "פרסומת חדשה", attachments=[
        ("pizza-spot.mp3", mp3("Pizza spot"), "audio/mpeg")])
    gmail.cut_attachment_downloads(times=1)
    run = gmail_import_run(station=connected_station)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and run.finished_at is not None
    assert "Could not reach Google" in run.error and "IncompleteRead" in run.error
    assert not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()
    # Nothing half-imported, the mail untouched: the next run takes it.
    assert not GmailImport.objects.exists()
    assert "UNREAD" in gmail.labels_of(message) and "OnAir/Processed" not in gmail.labels_of(message)
    again = gmail_import_run(station=connected_station)
    assert again.status == SyncRun.Status.OK, again.error
    assert GmailImport.objects.get().status == GmailImport.Status.IMPORTED


def test_mail_without_audio_stays_unread_and_is_labelled_for_people(connected_station, fake_google,
                                                                    mp3):
    gmail = fake_google.gmail
    invoice = gmail.add_message("billing@x.co", "Invoice November", attachments=[
        ("invoice.pdf", b"%PDF-1.4", "application/pdf")])
    spot = gmail.add_message("sales@x.co", "commercial for Friday", attachments=[
        ("spot.mp3", mp3("Spot"), "audio/mpeg")])
    run = gmail_import_run(station=connected_station)
    assert run.status == SyncRun.Status.OK, run.error
    assert run.counts.get("no_audio") == 1 and run.counts.get("messages") == 1
    labels = gmail.labels_of(invoice)
    assert "UNREAD" in labels and "OnAir/No audio" in labels and "OnAir/Processed" not in labels
    assert "OnAir/Processed" in gmail.labels_of(spot)
    # Later runs leave it alone: it is neither read again nor counted again.
    gets = fake_google.count("GET", f"/gmail/v1/users/me/messages/{invoice}")
    again = gmail_import_run(station=connected_station)
    assert again.counts.get("no_audio") is None
    assert fake_google.count("GET", f"/gmail/v1/users/me/messages/{invoice}") == gets


def test_gmail_rate_limit_is_retried_and_never_called_an_access_problem(connected_station,
                                                                         fake_google, mp3, settings):
    fake_google.gmail.add_message("sales@x.co", "commercial", attachments=[
        ("spot.mp3", mp3("Spot"), "audio/mpeg")])
    fake_google.inject_rate_limit("/gmail/v1/users/me/messages", times=2)
    run = gmail_import_run(station=connected_station)
    assert run.status == SyncRun.Status.OK, run.error
    assert Track.objects.count() == 1

    settings.GOOGLE_API_RETRIES = 1
    fake_google.gmail.add_message("sales@x.co", "commercial 2", attachments=[
        ("spot2.mp3", mp3("Spot 2"), "audio/mpeg")])
    fake_google.inject_rate_limit("/gmail/v1/users/me/messages", times=2, reason="rateLimitExceeded")
    run = gmail_import_run(station=connected_station)
    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("Google rate limit") and "refused access" not in run.error
    assert run.retry_after
