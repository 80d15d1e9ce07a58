"""Drive's folder tree as real Drive shapes it: trash and restore, folders moving in and out,
kind folders, names with slashes, bilingual nesting, several parents and shortcuts.

Each test syncs through the real google-api-python-client against the fake Drive
(tests/fakes/drive.py), which behaves as Drive does in each case (see its docstrings).
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from library import conventions, storage
from library.drive import drive_sync_run
from library.drive_tree import join_path, split_path
from library.models import DriveFolder, Track
from library.services import track_update
from radio.models import Role, SyncRun

pytestmark = pytest.mark.django_db


def sync(station) -> SyncRun:
    run = drive_sync_run(station=station)
    assert run is not None and run.status == SyncRun.Status.OK, run and run.error
    return run


def track(source_id: str) -> Track:
    return Track.objects.get(source=Track.Source.DRIVE, source_id=source_id)


def present(source_id: str) -> bool:
    return track(source_id).missing_since is None


def cached(t: Track) -> bool:
    """Downloaded and current (analysis runs later, in its own task)."""
    return bool(t.file) and t.file_checksum == t.checksum and storage.exists(t.file)


# --- 1. What Drive says is gone stays gone ------------------------------------------------


@pytest.mark.parametrize("report_descendants", [True, False],
                         ids=["descendants-reported", "folder-alone"])
def test_a_file_gone_on_its_own_stays_missing_when_a_folder_above_is_renamed_moved_or_restored(
        connected_station, drive_root, fake_google, mp3, report_descendants):
    drive = fake_google.drive
    songs = drive.add_folder("Songs", drive_root)
    rock = drive.add_folder("Rock", songs)
    artist = drive.add_folder("Queen", rock)
    trashed = drive.add_file("trashed.mp3", artist, mp3("T"))
    deleted = drive.add_file("deleted.mp3", artist, mp3("D"))
    kept = drive.add_file("kept.mp3", artist, mp3("K"))
    sync(connected_station)
    drive.trash(trashed)
    drive.delete(deleted)
    sync(connected_station)
    assert not present(trashed) and not present(deleted) and present(kept)

    drive.rename(rock, "Classic Rock")
    sync(connected_station)
    assert not present(trashed) and not present(deleted)
    assert track(kept).genre.name == "Classic Rock"

    drive.move(artist, drive.add_folder("Pop", songs))
    sync(connected_station)
    assert not present(trashed) and not present(deleted)
    assert track(kept).genre.name == "Pop"

    drive.trash(songs, report_descendants=report_descendants)
    sync(connected_station)
    assert not present(kept)  # went with its folder
    drive.untrash(songs, report_descendants=report_descendants)
    run = sync(connected_station)
    assert present(kept) and cached(track(kept))  # came back with its folder
    assert not present(trashed) and not present(deleted)  # trashed on their own: still gone
    assert run.counts.get("restored") == 1

    drive.untrash(trashed)  # Drive says it is back
    sync(connected_station)
    assert present(trashed) and track(trashed).genre.name == "Pop"


# --- 2. Folders that come in are crawled, folders that leave go missing -----------------------


def test_a_folder_moved_in_from_outside_is_crawled_and_goes_missing_when_moved_out(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    songs = drive.add_folder("Songs", drive_root)
    outside = drive.add_folder("Jazz")  # elsewhere in the user's Drive
    artist = drive.add_folder("Miles", outside)
    song = drive.add_file("so what.mp3", artist, mp3("So What"))
    sync(connected_station)
    assert not Track.objects.filter(source_id=song).exists()

    drive.move(outside, songs)  # the changes feed reports the folder alone
    run = sync(connected_station)
    assert run.kind == SyncRun.Kind.DRIVE_CHANGES
    t = track(song)
    assert (t.kind, t.genre.name, t.artist, t.source_path) == (
        "song", "Jazz", "Miles", "Songs/Jazz/Miles/so what.mp3")
    assert cached(t)  # downloaded in the same run

    drive.move(outside, None)  # and out again: whatever leaves goes missing
    sync(connected_station)
    assert not present(song)
    drive.move(outside, songs)
    sync(connected_station)
    assert present(song)


@pytest.mark.parametrize("report_descendants", [True, False],
                         ids=["descendants-reported", "folder-alone"])
def test_a_folder_restored_from_the_trash_brings_back_what_was_trashed_with_it(
        connected_station, drive_root, fake_google, mp3, report_descendants):
    drive = fake_google.drive
    jingles = drive.add_folder("Jingles", drive_root)
    sub = drive.add_folder("Station IDs", jingles)
    one = drive.add_file("one.mp3", sub, mp3("One"))
    sync(connected_station)
    added = drive.add_file("added just before.mp3", sub, mp3("Added"))
    drive.trash(jingles, report_descendants=report_descendants)
    sync(connected_station)  # the new file's change reads trashed: never seen in the library
    assert not present(one) and not Track.objects.filter(source_id=added).exists()
    drive.untrash(jingles, report_descendants=report_descendants)
    sync(connected_station)
    assert present(one) and present(added)
    assert track(added).kind == "jingle" and cached(track(added))


def test_a_folder_moved_into_a_new_folder_in_the_same_sync_is_crawled(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    shows = drive.add_folder("Shows", drive_root)
    outside = drive.add_folder("Morning")
    episode = drive.add_file("ep1.mp3", outside, mp3("Ep 1"))
    sync(connected_station)
    season = drive.add_folder("Season 1", shows)
    drive.move(outside, season)
    drive.rename(season, "Season One")  # the new parent's change comes after the move
    sync(connected_station)
    assert (track(episode).kind, track(episode).show_name) == ("show", "Season One")


# --- 6. Moving between kind folders re-derives every folder field ----------------------------


def test_moving_a_file_between_kind_folders_rederives_every_folder_field(
        connected_station, drive_root, fake_google, mp3, make_user):
    drive = fake_google.drive
    artist = drive.add_folder("ABBA", drive.add_folder("Pop", drive.add_folder("Songs", drive_root)))
    song = drive.add_file("waterloo.mp3", artist, mp3("Waterloo"))
    edited = drive.add_file("sos.mp3", artist, mp3("SOS"))
    ad = drive.add_file("pizza.mp3", drive.add_folder("Batch-2", drive.add_folder("Commercials",
                                                                                    drive_root)), mp3("Ad"))
    sync(connected_station)
    assert (track(song).genre.name, track(song).artist) == ("Pop", "ABBA")
    assert track(ad).batch == "Batch-2"
    editor = make_user(Role.EDITOR, connected_station)
    track_update(actor=editor, track=track(edited), data={"artist": "ABBA (by hand)"})

    morning = drive.add_folder("Morning Show", drive.add_folder("Shows", drive_root))
    drive.move(song, morning)
    drive.move(edited, morning)
    drive.move(ad, drive.add_folder("Jingles", drive_root))
    sync(connected_station)

    moved = track(song)
    assert (moved.kind, moved.show_name, moved.genre, moved.artist) == ("show", "Morning Show", None, "")
    assert track(ad).kind == "jingle" and track(ad).batch == ""
    assert track(edited).artist == "ABBA (by hand)"  # hand edits win
    assert track(edited).kind == "show" and track(edited).genre is None

    drive.move(song, drive_root)  # out of every kind folder: back to the defaults
    sync(connected_station)
    assert (track(song).kind, track(song).show_name) == ("song", "")


def test_a_field_no_folder_gives_any_more_falls_back_to_the_tags(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    pop = drive.add_folder("Pop", drive.add_folder("Songs", drive_root))
    song = drive.add_file("waterloo.mp3", drive.add_folder("ABBA", pop), mp3("Waterloo", "Abba"))
    other = drive.add_file("x.mp3", drive.add_folder("Someone", pop), mp3("X"))  # no artist tag
    sync(connected_station)
    assert track(song).artist == "ABBA" and track(other).artist == "Someone"
    drive.move(song, pop)
    drive.move(other, pop)
    sync(connected_station)
    assert track(song).artist == "Abba"  # the tag's, not the old folder's
    assert track(other).artist == ""
    assert track(song).genre.name == "Pop"


# --- 7. Names with slashes -------------------------------------------------------------------


def test_names_with_slashes_are_stored_unambiguously_and_survive_a_folder_rename(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    rock = drive.add_folder("Rock", drive.add_folder("Songs", drive_root))
    acdc = drive.add_folder("AC/DC", rock)
    f = drive.add_file("Back/In Black.mp3", acdc, mp3(""))
    sync(connected_station)
    t = track(f)
    assert (t.artist, t.source_name) == ("AC/DC", "Back/In Black.mp3")
    assert t.title == "Back/In Black"  # no title tag: the whole name, slash and all
    assert t.source_path == "Songs/Rock/AC\\/DC/Back\\/In Black.mp3"
    assert split_path(t.source_path) == ["Songs", "Rock", "AC/DC", "Back/In Black.mp3"]

    drive.rename(rock, "Hard\\Rock")
    sync(connected_station)
    t = track(f)
    assert t.source_path == "Songs/Hard\\\\Rock/AC\\/DC/Back\\/In Black.mp3"
    assert split_path(t.source_path) == ["Songs", "Hard\\Rock", "AC/DC", "Back/In Black.mp3"]
    assert (t.source_name, t.artist, t.genre.name) == ("Back/In Black.mp3", "AC/DC", "Hard\\Rock")


@pytest.mark.parametrize("names", [["a"], ["AC/DC", "x.mp3"], ["a\\", "/b/", ""], ["\\/", "\\\\"],
                                   ["שירים", "רוק/פופ", "שיר.mp3"]])
def test_join_and_split_path_round_trip(names):
    assert split_path(join_path(names)) == names


def test_migration_rewrites_old_paths_using_the_folder_names(connected_station):
    migration = importlib.import_module("library.migrations.0004_track_drive_place")
    root = DriveFolder.objects.create(station=connected_station, folder_id="r", is_root=True)
    songs = DriveFolder.objects.create(station=connected_station, folder_id="s", name="Songs",
                                       parent_id=root.folder_id)
    acdc = DriveFolder.objects.create(station=connected_station, folder_id="a", name="AC/DC",
                                      parent_id=songs.folder_id)
    old = Track.objects.create(station=connected_station, source=Track.Source.DRIVE, source_id="f1",
                               title="x", source_parent=acdc.folder_id,
                               source_path="Songs/AC/DC/Live/Loud.mp3")
    top = Track.objects.create(station=connected_station, source=Track.Source.DRIVE, source_id="f2",
                               title="y", source_parent=root.folder_id, source_path="a/b.mp3")
    lost = Track.objects.create(station=connected_station, source=Track.Source.DRIVE, source_id="f3",
                                title="z", source_parent="unknown", source_path="X/y.mp3")
    migration.forwards(apps, None)
    old.refresh_from_db()
    top.refresh_from_db()
    lost.refresh_from_db()
    assert (lost.source_name, lost.source_path) == ("y.mp3", "X/y.mp3")  # left for the next change
    assert (old.source_name, old.source_path) == ("Live/Loud.mp3", "Songs/AC\\/DC/Live\\/Loud.mp3")
    assert old.source_parents == ["a"]
    assert old.folder_fields == ["artist", "batch", "genre", "kind", "show_name"]
    assert (top.source_name, top.source_path) == ("a/b.mp3", "a\\/b.mp3")


# --- 8. Bilingual nesting --------------------------------------------------------------------


def test_a_kind_folder_nested_in_its_translation_is_transparent(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    rock = drive.add_folder("Rock", drive.add_folder("שירים", drive.add_folder("Songs", drive_root)))
    song = drive.add_file("s.mp3", drive.add_folder("Queen", rock), mp3("S"))
    ads = drive.add_folder("פרסומות", drive.add_folder("Commercials", drive_root))
    ad = drive.add_file("ad.mp3", drive.add_folder("Batch-1", ads), mp3("Ad"))
    show = drive.add_file("e.mp3", drive.add_folder("Boker", drive.add_folder(
        "Shows", drive.add_folder("תוכניות", drive_root))), mp3("E"))
    sync(connected_station)
    assert (track(song).kind, track(song).genre.name, track(song).artist) == ("song", "Rock", "Queen")
    assert (track(ad).kind, track(ad).batch) == ("commercial", "Batch-1")
    assert (track(show).kind, track(show).show_name) == ("show", "Boker")
    assert track(song).source_path == "Songs/שירים/Rock/Queen/s.mp3"


def test_classify_skips_only_a_same_kind_folder_directly_under_the_kind_folder():
    assert conventions.classify(["Songs", "Music", "שירים", "Rock", "Queen"])["genre_name"] == "Rock"
    assert conventions.classify(["Songs", "Rock", "שירים"])["artist"] == "שירים"  # deeper: a name
    assert conventions.classify(["Songs", "Jingles", "x"])["genre_name"] == "Jingles"  # other kind
    assert conventions.classify(["Commercials", "Ads", "Batch 3"])["batch"] == "Batch-3"


# --- 9. Several parents ----------------------------------------------------------------------


def test_a_file_with_two_parents_the_first_outside_is_in_the_library(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    jingles = drive.add_folder("Jingles", drive_root)
    outside = drive.add_folder("Old stuff")
    crawled = drive.add_file("crawled.mp3", jingles, mp3("Crawled"))
    drive.add_parent(crawled, outside, first=True)
    sync(connected_station)  # full crawl
    t = track(crawled)
    assert present(crawled) and t.kind == "jingle" and t.source_path == "Jingles/crawled.mp3"
    assert t.source_parent == jingles and set(t.source_parents) == {outside, jingles}

    changed = drive.add_file("changed.mp3", outside, mp3("Changed"))
    drive.add_parent(changed, jingles)  # parents: [outside, jingles]
    sync(connected_station)  # changes feed
    assert present(changed) and track(changed).kind == "jingle"

    drive.rename(outside, "Older stuff")  # the other parent changing moves nothing
    drive.trash(jingles)  # the library parent going takes it out of the library
    sync(connected_station)
    assert not present(crawled) and not present(changed)


# --- 11. Shortcuts ---------------------------------------------------------------------------


def test_shortcuts_to_audio_are_listed_as_skipped_with_the_reason(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    jingles = drive.add_folder("Jingles", drive_root)
    inside = drive.add_file("id.mp3", jingles, mp3("ID"))
    elsewhere = drive.add_file("promo.mp3", drive.add_folder("Elsewhere"), mp3("Promo"))
    to_outside = drive.add_shortcut("promo.mp3", jingles, elsewhere)
    to_inside = drive.add_shortcut("id - shortcut", drive.add_folder("Shows", drive_root), inside)
    run = sync(connected_station)
    assert not Track.objects.filter(source_id__in=[to_outside, to_inside, elsewhere]).exists()
    assert Track.objects.count() == 1 and cached(track(inside))
    assert run.counts["shortcuts_skipped"] == 2 and "download_failed" not in run.counts
    skipped = {s["id"]: s for s in run.progress["skipped"]}
    assert skipped[to_outside]["path"] == "Jingles/promo.mp3"
    assert skipped[to_outside]["target"] == elsewhere
    assert "not followed" in skipped[to_outside]["reason"]
    assert "already in the library" in skipped[to_inside]["reason"]

    later = drive.add_shortcut("later.mp3", jingles, elsewhere)  # and through the changes feed
    run = sync(connected_station)
    assert [s["id"] for s in run.progress["skipped"]] == [later]


def test_bidi_controls_in_folder_names_stay_out_of_genre_artist_and_show(
        connected_station, drive_root, fake_google, mp3):
    drive = fake_google.drive
    songs = drive.add_folder("Songs", drive_root)
    rock = drive.add_folder("\u202bרוק\u202c", songs)
    song = drive.add_file("s.mp3", drive.add_folder("\u200fQueen\u202e", rock), mp3("S"))
    show = drive.add_file("e.mp3", drive.add_folder("\u2067Boker\u2069", drive.add_folder(
        "Shows", drive_root)), mp3("E"))
    sync(connected_station)
    assert (track(song).genre.name, track(song).artist) == ("רוק", "Queen")
    assert track(show).show_name == "Boker"
    assert "\u202b" in track(song).source_path  # the raw names are kept in the path
