"""The audio cache: type from the bytes, and cleaning what no row refers to any more."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from library import storage, tags
from library.drive import drive_sync_run
from library.models import GmailImport, Track
from library.services import library_cache_clean
from tests.library.audio import CODECS, make_tone

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = (tmp_path / "media").resolve()
    return settings.MEDIA_ROOT


# --- type from the bytes -----------------------------------------------------------

EXPECTED = {".mp3": (".mp3", "audio/mpeg"), ".wav": (".wav", "audio/wav"),
            ".flac": (".flac", "audio/flac"), ".ogg": (".ogg", "audio/ogg"),
            ".oga": (".ogg", "audio/ogg"), ".opus": (".opus", "audio/ogg"),
            ".m4a": (".m4a", "audio/mp4"), ".aac": (".aac", "audio/aac")}


@pytest.mark.parametrize("ext", sorted(CODECS))
def test_sniff_names_the_format_whatever_the_file_is_called(tmp_path, ext):
    made = make_tone(tmp_path / f"tone{ext}", seconds=0.3, title="T")
    for name in ("no-extension", "lies.mp3", "lies.wav"):
        renamed = tmp_path / name
        renamed.write_bytes(made.read_bytes())
        found = tags.sniff(renamed)
        assert (found.ext, found.mime) == EXPECTED[ext], name


def test_sniff_refuses_bytes_that_are_not_audio(tmp_path):
    for name, data in (("doc.mp3", b"%PDF-1.4\n" * 300), ("empty.wav", b""),
                       ("noise.mp3", bytes(range(256)) * 40)):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(tags.NotAudio):
            tags.sniff(path)


def test_a_wav_called_mp3_is_stored_as_wav_with_its_mime(tmp_path, station):
    wav = make_tone(tmp_path / "x.wav", seconds=0.3)
    misnamed = tmp_path / "promo.mp3"
    misnamed.write_bytes(wav.read_bytes())
    rel, _md5, _size = storage.store_copy(station.slug, misnamed, tags.sniff_extension)
    assert rel.endswith(".wav")
    assert tags.read(storage.absolute(rel)).mime_type == "audio/wav"
    assert tags.read(misnamed).mime_type == "audio/wav"  # the name does not decide


def test_store_leaves_nothing_behind_when_the_bytes_are_not_audio(station):
    with pytest.raises(tags.NotAudio):
        storage.store(station.slug, tags.sniff_extension, lambda w: w.write(b"<html>no</html>" * 50))
    assert [p for p in storage.station_root(station.slug).rglob("*") if p.is_file()] == []


def test_display_text_strips_bidi_controls_only():
    raw = "\u202eevil\u202c \u200fשלום\u200e \u2067x\u2069\u061c"
    assert tags.display_text(raw) == "evil שלום x"
    assert tags.display_text("AC/DC – Live (1991)") == "AC/DC – Live (1991)"


# --- cleaning the cache ---------------------------------------------------------------

def age(rel: str, seconds: float) -> None:
    """Make a cached file look this old (no sleeping)."""
    then = time.time() - seconds
    os.utime(storage.absolute(rel), (then, then))


def put(station, data: bytes, ext: str = ".mp3") -> str:
    rel, _md5, _size = storage.store(station.slug, ext, lambda w: w.write(data))
    return rel


def test_content_change_leaves_the_old_file_which_the_cleaner_removes_after_the_grace(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    song = drive.add_file("song.mp3", drive_root, mp3("Version 1"))
    drive_sync_run(station=connected_station)
    old = Track.objects.get(source_id=song).file
    age(old, 3 * 3600)
    drive.set_content(song, mp3("Version 2"))
    drive_sync_run(station=connected_station)
    new = Track.objects.get(source_id=song).file
    assert new != old and storage.exists(old) and storage.exists(new)

    # Just dropped by its track: the playback worker may still hold its path.
    assert library_cache_clean(grace=3600)["removed"] == []
    assert storage.exists(old)
    age(old, 2 * 3600)
    age(new, 2 * 3600)  # old, but referenced: never removed
    result = library_cache_clean(grace=3600)
    assert result["removed"] == [old] and result["bytes"] > 0
    assert not storage.exists(old) and storage.exists(new)


def test_the_cleaner_never_removes_what_any_row_of_any_station_refers_to(station, other_station):
    mine = put(station, b"a" * 100)
    cover = put(station, b"\x89PNG" + b"c" * 100, ".png")
    stash = put(station, b"s" * 100)
    theirs = put(other_station, b"b" * 100)
    orphan = put(other_station, b"o" * 100)
    Track.objects.create(station=station, title="Mine", source=Track.Source.UPLOAD, file=mine, cover=cover)
    # A row of one station pointing into another's folder is still a reference.
    Track.objects.create(station=station, title="Shared", source=Track.Source.UPLOAD, file=theirs)
    GmailImport.objects.create(station=station, message_id="m", part_id="1", filename="x.mp3",
                               status=GmailImport.Status.REVIEW, stash=stash)
    for rel in (mine, cover, stash, theirs, orphan):
        age(rel, 10 * 3600)

    result = library_cache_clean(grace=3600)

    assert result["removed"] == [orphan]
    assert all(storage.exists(rel) for rel in (mine, cover, stash, theirs))


def test_a_download_in_progress_and_recent_files_are_left_alone(station):
    recent = put(station, b"r" * 100)  # placed a moment ago, its row not saved yet
    staging = storage.station_root(station.slug) / storage.STAGING
    live_part = staging / "live.part"
    live_part.write_bytes(b"half")
    dead_part = staging / "dead.part"
    dead_part.write_bytes(b"half")
    then = time.time() - 2 * 24 * 3600
    os.utime(dead_part, (then, then))

    result = library_cache_clean(grace=3600)

    assert storage.exists(recent) and live_part.exists() and not dead_part.exists()
    assert result["kept_recent"] == 1


def test_reusing_a_cached_file_refreshes_it_so_the_cleaner_spares_it(station):
    rel = put(station, b"z" * 100)
    age(rel, 10 * 3600)
    md5 = Path(rel).stem
    assert storage.find(station.slug, md5) == rel  # a track is about to point at it
    assert library_cache_clean(grace=3600)["removed"] == []


def test_clean_command_dry_run_lists_and_keeps_then_removes(station):
    orphan = put(station, b"q" * 100)
    age(orphan, 10 * 3600)
    out = io.StringIO()
    call_command("library_clean_cache", "--dry-run", "--grace", "3600", stdout=out)
    assert f"would remove {orphan}" in out.getvalue() and storage.exists(orphan)
    out = io.StringIO()
    call_command("library_clean_cache", "--grace", "3600", stdout=out)
    assert "removed 1 file(s)" in out.getvalue() and not storage.exists(orphan)


def test_clean_is_on_the_beat_schedule_with_an_expiry():
    from settings.celery import _beat_schedule

    entry = _beat_schedule()["library-cache-clean"]
    assert entry["task"] == "library.tasks.cache_clean"
    assert 0 < entry["options"]["expires"] < entry["schedule"]
