"""Drive sync through the real google-api-python-client against the local fake Drive."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from library import storage
from library.drive import drive_sync_run
from library.models import DriveFolder, Track
from library.services import track_update
from radio.models import Role, SyncCursor, SyncRun

pytestmark = pytest.mark.django_db


def sync(station) -> SyncRun:
    run = drive_sync_run(station=station)
    assert run is not None
    return run


def track(source_id: str) -> Track:
    return Track.objects.get(source=Track.Source.DRIVE, source_id=source_id)


def drive_requests(fake) -> int:
    """Drive API calls only (not the discovery document or token refreshes)."""
    return sum(1 for r in fake.requests if r.path.startswith(("/drive/v3/", "/upload/drive/")))


def media_requests(fake) -> int:
    return sum(1 for r in fake.requests if r.query.get("alt") == ["media"])


def test_first_sync_crawls_classifies_by_folder_and_caches_verified_files(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    songs = drive.add_folder("Songs", drive_root)
    abba = drive.add_folder("ABBA", drive.add_folder("Pop", songs))
    song = drive.add_file("Waterloo.mp3", abba, mp3("Waterloo", "Abba"))
    rock_he = drive.add_folder("אריק איינשטיין", drive.add_folder("רוק", drive.add_folder("שירים", drive_root)))
    song_he = drive.add_file("אני ואתה.mp3", rock_he, mp3(""))
    show = drive.add_file("ep1.mp3", drive.add_folder("Morning Show", drive.add_folder("Shows", drive_root)),
                          mp3("Episode 1"))
    ad = drive.add_file("pizza.mp3", drive.add_folder("Batch-3", drive.add_folder("פרסומות", drive_root)),
                        mp3("Pizza"))
    jingle = drive.add_file("id.mp3", drive.add_folder("ג׳ינגלים", drive_root), mp3("Station ID"))
    news = drive.add_file("flash.mp3", drive.add_folder("מבזקים", drive_root), mp3("Flash"))
    drive.add_file("rider.pdf", songs, b"%PDF-1.4 not audio", mime_type="application/pdf")
    outside = drive.add_file("elsewhere.mp3", None, mp3("Not ours"))

    run = sync(connected_station)

    assert run.status == SyncRun.Status.OK, run.error
    assert run.kind == SyncRun.Kind.DRIVE_FULL
    assert run.counts["added"] == 6 and run.counts["downloaded"] == 6
    assert run.counts["skipped"] == 1  # the PDF
    waterloo = track(song)
    assert (waterloo.kind, waterloo.genre.name, waterloo.artist, waterloo.title) == \
        ("song", "Pop", "ABBA", "Waterloo")  # folder artist wins over the tag's spelling
    assert waterloo.source_path == "Songs/Pop/ABBA/Waterloo.mp3"
    hebrew = track(song_he)
    assert (hebrew.kind, hebrew.genre.name, hebrew.artist, hebrew.title) == \
        ("song", "רוק", "אריק איינשטיין", "אני ואתה")  # no tag title: the file name
    assert (track(show).kind, track(show).show_name) == ("show", "Morning Show")
    assert (track(ad).kind, track(ad).batch) == ("commercial", "Batch-3")
    assert track(jingle).kind == "jingle" and track(news).kind == "newsflash"
    assert not Track.objects.filter(source_id=outside).exists()
    for t in Track.objects.all():
        assert storage.exists(t.file)
        assert storage.md5_of(storage.absolute(t.file)) == t.checksum == drive.files[t.source_id]["md5Checksum"]
        assert t.duration and t.duration > 0.4
    assert SyncCursor.objects.get(station=connected_station, source="drive").token
    assert not list((settings.MEDIA_ROOT / "library" / connected_station.slug / "tmp").glob("*"))


def test_full_sync_of_1000_files(connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    genres = [drive.add_folder(name, drive.add_folder("Songs", drive_root)) for name in ("Rock",)]
    artists = [drive.add_folder(f"Artist {i}", genres[0]) for i in range(20)]
    for i in range(1000):
        drive.add_file(f"Song {i:04d}.mp3", artists[i % 20], mp3(f"Song {i:04d}", f"Artist {i % 20}"))

    run = sync(connected_station)

    assert run.status == SyncRun.Status.OK, run.error
    assert Track.objects.filter(station=connected_station).count() == 1000
    assert run.counts["downloaded"] == 1000
    assert Track.objects.filter(artist="Artist 7").count() == 50
    assert len({t.file for t in Track.objects.all()}) == 1000
    assert all(storage.exists(f) for f in Track.objects.values_list("file", flat=True))
    # A second sync reads only the changes feed: one request, nothing downloaded.
    before = drive_requests(fake_google)
    again = sync(connected_station)
    assert again.kind == SyncRun.Kind.DRIVE_CHANGES and again.status == SyncRun.Status.OK
    assert drive_requests(fake_google) - before == 1
    assert again.counts.get("downloaded", 0) == 0


def test_incremental_sync_applies_add_rename_move_trash_restore_and_content_change(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    songs = drive.add_folder("Songs", drive_root)
    rock, jazz = drive.add_folder("Rock", songs), drive.add_folder("Jazz", songs)
    a = drive.add_file("a.mp3", rock, mp3("A"))
    b = drive.add_file("b.mp3", rock, mp3("B"))
    c = drive.add_file("c.mp3", rock, mp3("C"))
    d = drive.add_file("d.mp3", rock, mp3("D"))
    assert sync(connected_station).status == SyncRun.Status.OK
    downloads = media_requests(fake_google)
    file_of_b = track(b).file

    new = drive.add_file("new.mp3", jazz, mp3("New"))
    drive.rename(a, "a (radio edit).mp3")
    drive.move(b, jazz)
    drive.trash(c)
    drive.set_content(d, mp3("D v2"))
    requests_before = drive_requests(fake_google)
    run = sync(connected_station)

    assert run.status == SyncRun.Status.OK, run.error
    assert run.kind == SyncRun.Kind.DRIVE_CHANGES
    assert track(new).genre.name == "Jazz" and storage.exists(track(new).file)
    assert track(a).source_path == "Songs/Rock/a (radio edit).mp3"
    moved = track(b)
    assert moved.genre.name == "Jazz" and moved.source_path == "Songs/Jazz/b.mp3"
    assert moved.file == file_of_b  # no new download for a move
    assert track(c).missing_since is not None and Track.objects.filter(source_id=c).exists()
    changed = track(d)
    assert changed.checksum == drive.files[d]["md5Checksum"] == changed.file_checksum
    assert media_requests(fake_google) - downloads == 2  # only the new file and the new content
    # Requests follow the changes, not the library: a changes page + 2 downloads.
    assert drive_requests(fake_google) - requests_before <= 4

    drive.untrash(c)
    run = sync(connected_station)
    assert run.counts.get("restored") == 1
    assert track(c).missing_since is None


def test_file_deleted_for_good_is_marked_missing_never_deleted(connected_station, drive_root,
                                                               fake_google, mp3):
    gone = fake_google.drive.add_file("gone.mp3", fake_google.drive.add_folder("Jingles", drive_root),
                                      mp3("Gone"))
    sync(connected_station)
    fake_google.drive.delete(gone)
    sync(connected_station)
    assert track(gone).missing_since is not None
    assert not track(gone).is_playable


def test_hand_edited_fields_are_never_overwritten(connected_station, drive_root, fake_google, mp3,
                                                  make_user):
    drive = fake_google.drive
    songs = drive.add_folder("Songs", drive_root)
    f = drive.add_file("x.mp3", drive.add_folder("Artist", drive.add_folder("Rock", songs)), mp3("X"))
    sync(connected_station)
    editor = make_user(Role.EDITOR, connected_station)
    track_update(actor=editor, track=track(f), data={"artist": "The Real Artist", "title": "Real Title"})
    drive.move(f, drive.add_folder("Other", drive.add_folder("Pop", songs)))
    drive.rename(f, "renamed.mp3")
    sync(connected_station)
    t = track(f)
    assert (t.artist, t.title) == ("The Real Artist", "Real Title")
    assert t.genre.name == "Pop"  # not edited by hand: follows the folder


def test_folder_rename_moves_what_is_beneath(connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    artist = drive.add_folder("Abba", drive.add_folder("Pop", drive.add_folder("Songs", drive_root)))
    f = drive.add_file("s.mp3", artist, mp3("S"))
    sync(connected_station)
    drive.rename(artist, "ABBA")
    run = sync(connected_station)
    assert run.status == SyncRun.Status.OK
    assert track(f).artist == "ABBA" and track(f).source_path == "Songs/Pop/ABBA/s.mp3"


def test_folder_override_set_in_the_admin_wins(connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    promos = drive.add_folder("Promos", drive_root)
    f = drive.add_file("promo.mp3", promos, mp3("Promo"))
    sync(connected_station)
    assert track(f).kind == "song"  # no convention for "Promos": the default
    DriveFolder.objects.filter(folder_id=promos).update(kind_override="jingle")
    drive.rename(promos, "Promos 2025")  # any change under it re-derives
    sync(connected_station)
    assert track(f).kind == "jingle"


def test_transient_google_errors_are_retried(connected_station, drive_root, fake_google, mp3):
    fake_google.drive.add_file("a.mp3", fake_google.drive.add_folder("Jingles", drive_root), mp3("A"))
    fake_google.inject("/drive/v3/files", 429, times=1)
    fake_google.inject("/drive/v3/changes", 500, times=1)
    run = sync(connected_station)
    assert run.status == SyncRun.Status.OK, run.error
    assert Track.objects.count() == 1


def test_access_denied_fails_the_run_with_a_next_step_and_keeps_the_token(
        connected_station, drive_root, fake_google, mp3):
    fake_google.drive.add_file("a.mp3", drive_root, mp3("A"))
    sync(connected_station)
    token = SyncCursor.objects.get(station=connected_station).token
    fake_google.drive.add_file("b.mp3", drive_root, mp3("B"))
    fake_google.inject("/drive/v3/changes", 403, times=1)
    run = sync(connected_station)
    assert run.status == SyncRun.Status.FAILED
    assert "HTTP 403" in run.error and "Share the Drive folder" in run.error
    assert SyncCursor.objects.get(station=connected_station).token == token
    assert sync(connected_station).status == SyncRun.Status.OK
    assert Track.objects.count() == 2  # the change was not lost


def test_server_errors_beyond_the_retries_fail_without_advancing(connected_station, drive_root,
                                                                 fake_google, mp3):
    fake_google.drive.add_file("a.mp3", drive_root, mp3("A"))
    sync(connected_station)
    token = SyncCursor.objects.get(station=connected_station).token
    b = fake_google.drive.add_file("b.mp3", drive_root, mp3("B"))
    fake_google.inject("/drive/v3/changes", 500, times=settings.GOOGLE_API_RETRIES + 1)
    run = sync(connected_station)
    assert run.status == SyncRun.Status.FAILED and "HTTP 500" in run.error
    assert SyncCursor.objects.get(station=connected_station).token == token
    assert not Track.objects.filter(source_id=b).exists()
    sync(connected_station)
    assert Track.objects.filter(source_id=b).exists()


def test_expired_page_token_triggers_a_full_resync(connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    a = drive.add_file("a.mp3", drive_root, mp3("A"))
    sync(connected_station)
    drive.expire_tokens_before_now()
    drive.trash(a)
    b = drive.add_file("b.mp3", drive_root, mp3("B"))
    run = sync(connected_station)
    assert run.status == SyncRun.Status.OK, run.error
    assert run.kind == SyncRun.Kind.DRIVE_FULL and run.counts.get("token_expired") == 1
    assert track(a).missing_since is not None and Track.objects.filter(source_id=b).exists()


def test_truncated_download_leaves_no_file_and_is_retried(connected_station, drive_root, fake_google, mp3):
    a = fake_google.drive.add_file("a.mp3", drive_root, mp3("A" * 20))
    fake_google.drive.truncate_downloads(times=1)
    run = sync(connected_station)
    assert run.counts.get("download_failed") == 1
    t = track(a)
    assert t.file == "" and not t.is_playable
    assert not list((settings.MEDIA_ROOT / "library" / connected_station.slug).rglob("*.part"))
    run = sync(connected_station)
    assert run.counts.get("downloaded") == 1
    assert storage.md5_of(storage.absolute(track(a).file)) == track(a).checksum


def test_station_without_google_access_gets_a_clear_failed_run(station, fake_google):
    run = drive_sync_run(station=station)
    assert run.status == SyncRun.Status.FAILED
    assert "no Google access" in run.error


async def _until_finished(layer, channel) -> list[dict]:
    seen = []
    while not seen or seen[-1]["data"]["status"] == "running":
        seen.append(await asyncio.wait_for(layer.receive(channel), timeout=5))
    return seen


def test_progress_is_sent_to_the_station_group(connected_station, drive_root, fake_google, mp3):
    fake_google.drive.add_file("a.mp3", drive_root, mp3("A"))
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"station.{connected_station.slug}", channel)
    run = sync(connected_station)
    seen = async_to_sync(_until_finished)(layer, channel)
    assert seen[0]["type"] == "library_sync" and seen[0]["data"]["status"] == "running"
    assert seen[-1]["data"] == {**seen[-1]["data"], "run": run.pk, "status": "ok"}
