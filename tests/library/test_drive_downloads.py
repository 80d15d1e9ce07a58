"""Drive downloads through the real google-api-python-client: one bad file fails alone,
the type comes from the bytes, names reach people without bidi controls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from library import storage
from library.drive import drive_sync_run
from library.models import Track
from tests.library.audio import make_tone

pytestmark = pytest.mark.django_db

OK, FAILED = "ok", "failed"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """A cache of this test's own: content-addressed, it would otherwise hold other tests' files."""
    settings.MEDIA_ROOT = (tmp_path / "media").resolve()
    return settings.MEDIA_ROOT


def sync(station):
    run = drive_sync_run(station=station)
    assert run is not None
    return run


def track(source_id: str) -> Track:
    return Track.objects.get(source=Track.Source.DRIVE, source_id=source_id)


def media_requests(fake, file_id: str | None = None) -> int:
    return sum(1 for r in fake.requests if r.query.get("alt") == ["media"]
               and (file_id is None or r.path.endswith("/" + file_id)))


def due_now(file_id: str) -> None:
    """Time passes: the backoff of this file is over (no sleeping)."""
    Track.objects.filter(source_id=file_id).update(download_retry_at=timezone.now() - timedelta(seconds=1))


def assert_retry_in(t: Track, seconds: float) -> None:
    left = (t.download_retry_at - timezone.now()).total_seconds()
    assert seconds - 15 < left <= seconds, left


@pytest.fixture
def library(drive_root, fake_google, mp3):
    """A bad file first in order, then three good ones, in a Jingles folder."""
    drive = fake_google.drive
    jingles = drive.add_folder("Jingles", drive_root)
    bad = drive.add_file("a bad one.mp3", jingles, mp3("Bad"))
    good = [drive.add_file(f"good {i}.mp3", jingles, mp3(f"Good {i}")) for i in range(3)]
    return bad, good


def test_a_file_drive_flags_as_abusive_fails_alone_and_is_retried_after_its_backoff(
        connected_station, library, fake_google):
    bad, good = library
    fake_google.drive.fail_downloads(bad, "cannotDownloadAbusiveFile")

    run = sync(connected_station)

    assert run.status == OK, run.error
    assert run.counts["downloaded"] == 3 and run.counts["download_failed"] == 1
    assert run.progress["downloads_not_fetched"] == 1
    assert run.progress["notice"].startswith("1 file could not be downloaded")
    assert all(storage.exists(track(g).file) for g in good)
    failed = track(bad)
    assert "cannotDownloadAbusiveFile" in failed.download_error
    assert "malware or spam" in failed.download_error
    assert failed.download_failures == 1 and failed.file == "" and not failed.is_playable
    assert_retry_in(failed, 60)

    # Before its backoff is over, the next run leaves it alone and says so.
    tries = media_requests(fake_google, bad)
    run = sync(connected_station)
    assert run.status == OK and media_requests(fake_google, bad) == tries
    assert run.counts.get("download_waiting") == 1 and "download_failed" not in run.counts

    # After it, the file is tried again; still refused, the wait doubles.
    due_now(bad)
    run = sync(connected_station)
    assert media_requests(fake_google, bad) == tries + 1
    assert run.counts["download_failed"] == 1
    assert track(bad).download_failures == 2
    assert_retry_in(track(bad), 120)

    # Drive serves it again: fetched, and the failure forgotten.
    fake_google.drive.allow_downloads(bad)
    due_now(bad)
    run = sync(connected_station)
    assert run.counts["downloaded"] == 1
    fetched = track(bad)
    assert storage.exists(fetched.file) and fetched.file_checksum == fetched.checksum
    assert (fetched.download_error, fetched.download_failures, fetched.download_retry_at) == ("", 0, None)


@pytest.mark.parametrize(("reason", "status", "words"), [
    ("notFound", 404, "HTTP 404 (notFound)"),
    ("backendError", 500, "kept answering HTTP 500 (backendError)"),
    ("backendError", 503, "kept answering HTTP 503 (backendError)"),
])
def test_a_file_that_is_gone_or_keeps_failing_does_not_stop_the_others(
        connected_station, library, fake_google, settings, reason, status, words):
    settings.GOOGLE_API_RETRIES = 1  # the client sleeps between retries of a 5xx
    bad, good = library
    fake_google.drive.fail_downloads(bad, reason, status=status)

    run = sync(connected_station)

    assert run.status == OK, run.error
    assert run.counts["downloaded"] == 3 and run.counts["download_failed"] == 1
    assert words in track(bad).download_error
    if status >= 500:  # retried within the run first, as Google asks
        assert media_requests(fake_google, bad) == 2


def test_bytes_that_do_not_match_drives_checksum_are_the_files_failure(
        connected_station, library, fake_google):
    bad, good = library
    # Drive's metadata and bytes disagree (e.g. the file was being replaced meanwhile).
    fake_google.drive.files[bad]["md5Checksum"] = "0" * 32
    run = sync(connected_station)
    assert run.status == OK and run.counts["downloaded"] == 3
    assert "did not match Drive's md5Checksum" in track(bad).download_error
    assert not list((settings.MEDIA_ROOT / "library" / connected_station.slug).rglob("*.part"))


def test_a_403_on_every_download_still_fails_the_run(connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    drive.add_file("first.mp3", drive_root, mp3("First"))
    assert sync(connected_station).status == OK
    new = drive.add_file("second.mp3", drive_root, mp3("Second"))
    fake_google.inject("/drive/v3/files/", 403, times=10)  # e.g. the folder was unshared

    run = sync(connected_station)

    assert run.status == FAILED
    assert "HTTP 403" in run.error and "Share the Drive folder" in run.error
    assert track(new).download_error == ""  # not blamed on the file


def test_a_rate_limit_stops_the_downloads_until_the_next_run_without_blaming_a_file(
        connected_station, library, fake_google, settings):
    settings.GOOGLE_API_RETRIES = 1
    bad, good = library
    fake_google.inject(f"/drive/v3/files/{bad}", 429, times=2)  # the first download, and its retry

    run = sync(connected_station)

    assert run.status == OK, run.error
    assert run.counts["download_postponed"] == 4 and "downloaded" not in run.counts
    assert not Track.objects.exclude(download_error="").exists()
    run = sync(connected_station)
    assert run.counts["downloaded"] == 4


def test_bytes_that_are_not_audio_are_flagged_and_not_fetched_again_until_they_change(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    fake = drive.add_file("totally a song.mp3", drive_root, b"%PDF-1.4 not audio\n" * 500)
    real = drive.add_file("real.mp3", drive_root, mp3("Real"))

    run = sync(connected_station)

    assert run.status == OK, run.error
    assert run.counts["downloaded"] == 1 and run.counts["not_audio"] == 1
    flagged = track(fake)
    assert flagged.download_error.startswith("not audio:")
    assert flagged.download_retry_at is None and flagged.file == "" and not flagged.is_playable
    assert storage.exists(track(real).file)
    assert not list((settings.MEDIA_ROOT / "library" / connected_station.slug).rglob("*.part"))
    tries = media_requests(fake_google, fake)
    sync(connected_station)
    assert media_requests(fake_google, fake) == tries  # the same bytes: not fetched again
    drive.set_content(fake, mp3("Now it is audio"))
    run = sync(connected_station)
    assert run.counts["downloaded"] == 1 and storage.exists(track(fake).file)
    assert track(fake).download_error == ""


@pytest.fixture(scope="module")
def wav_bytes(tmp_path_factory) -> bytes:
    return make_tone(tmp_path_factory.mktemp("wav") / "tone.wav", seconds=0.5).read_bytes()


def test_type_comes_from_the_bytes_extensionless_and_misnamed_wav(
        connected_station, drive_root, fake_google, wav_bytes, make_user, api_client):
    from radio.models import Role

    drive = fake_google.drive
    # Drive guesses mimeType from the name, or from the bytes when there is no extension.
    bare = drive.add_file("station id", drive_root, wav_bytes, mime_type="audio/x-wav")
    liar = drive.add_file("promo.mp3", drive_root, wav_bytes + b"\0\0", mime_type="audio/mpeg")

    run = sync(connected_station)

    assert run.status == OK, run.error
    api_client.force_authenticate(make_user(Role.VIEWER, connected_station))
    for file_id in (bare, liar):
        t = track(file_id)
        assert t.file.endswith(".wav") and t.mime_type == "audio/wav", (t.file, t.mime_type)
        response = api_client.get(f"/api/v1/stations/{connected_station.slug}/tracks/{t.pk}/audio")
        assert response.status_code == 200
        assert response["Content-Type"] == "audio/wav"
    assert track(bare).title == "station id" and track(liar).title == "promo"


def test_bidi_controls_are_stripped_from_what_people_read_and_the_raw_name_kept(
        connected_station, drive_root, fake_google, mp3, tmp_path):
    drive = fake_google.drive
    rock = drive.add_folder("Rock", drive.add_folder("Songs", drive_root))
    artist = drive.add_folder("\u200fאריק\u200f", rock)
    # RLO (U+202E) makes "evil<RLO>3pm.exe" show as "evilexe.mp3": what people read must not.
    named = drive.add_file("\u202eevil\u202c.mp3", artist, mp3(""))
    tagged_path = make_tone(tmp_path / "tagged.mp3", seconds=0.5, title="\u202bשלום\u202c עולם",
                            album="\u2067Live\u2069")
    tagged = drive.add_file("tagged.mp3", drive.add_folder("Jingles", drive_root),
                            tagged_path.read_bytes())
    refused = drive.add_file("\u2067refused\u2069.mp3", drive_root, mp3("x"))
    drive.fail_downloads(refused, "cannotDownloadAbusiveFile")  # the name alone is shown

    run = sync(connected_station)

    assert run.status == OK, run.error
    t = track(named)
    assert (t.title, t.artist) == ("evil", "אריק")
    assert "\u202eevil\u202c.mp3" in (t.source_name, t.source_path)  # the raw name, as Drive has it
    t = track(tagged)
    assert (t.title, t.album) == ("שלום עולם", "Live")
    assert track(refused).title == "refused"


def test_the_admin_lists_failed_downloads_shows_the_reason_and_retries_now(
        connected_station, library, fake_google, make_user, django_capture_on_commit_callbacks):
    from django.test import Client

    from radio.models import Role

    bad, good = library
    fake_google.drive.fail_downloads(bad, "cannotDownloadAbusiveFile")
    sync(connected_station)
    failed = track(bad)
    client = Client()
    client.force_login(make_user(Role.EDITOR, connected_station, is_staff=True))

    listed = client.get("/admin/library/track/", {"download_failed": "yes"}).content.decode()
    assert "a bad one" in listed and "good 1" not in listed
    page = client.get(f"/admin/library/track/{failed.pk}/change/").content.decode()
    assert "malware or spam" in page and "cannotDownloadAbusiveFile" in page

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post("/admin/library/track/", {
            "action": "retry_download", "_selected_action": [failed.pk]}, follow=True)
    assert response.status_code == 200 and len(queued) == 1  # a sync is queued
    assert "1 track will be downloaded again" in response.content.decode()
    fake_google.drive.allow_downloads(bad)
    run = sync(connected_station)  # what the queued sync does: the backoff no longer holds it
    assert run.counts["downloaded"] == 1 and storage.exists(track(bad).file)


def test_a_transfer_cut_short_is_the_files_failure_and_tried_again_at_the_next_run(
        connected_station, library, fake_google):
    bad, good = library
    fake_google.drive.truncate_downloads(times=1)  # the first download: the bad one

    run = sync(connected_station)

    assert run.status == OK and run.counts["downloaded"] == 3
    cut = track(bad)
    assert "cut short" in cut.download_error and cut.download_retry_at <= timezone.now()
    run = sync(connected_station)
    assert run.counts["downloaded"] == 1 and track(bad).download_error == ""
