"""`manage.py import_folder`: real files in a folder become tracks, once."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from library import storage
from library.models import Genre, Track
from tests.library.audio import make_corrupt, make_tone

pytestmark = pytest.mark.django_db


def run(root: Path, **options) -> str:
    out = StringIO()
    call_command("import_folder", str(root), stdout=out, **{"station": "kol", **options})
    return out.getvalue()


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "Music"
    make_tone(root / "alpha.mp3", seconds=1.0, title="Alpha", artist="Ahava", genre="Rock")
    make_tone(root / "Jingles" / "beta.flac", seconds=1.0, title="Beta", artist="Kol")
    (root / "notes.txt").write_text("not audio")
    return root


def test_imports_every_audio_file_with_tags_kind_and_genre(station, folder):
    output = run(folder, kind="jingle", genre="Station IDs")

    tracks = {t.title: t for t in Track.objects.filter(station=station)}
    assert set(tracks) == {"Alpha", "Beta"}
    beta = tracks["Beta"]
    assert (beta.kind, beta.genre.name, beta.artist) == ("jingle", "Station IDs", "Kol")
    assert beta.source == Track.Source.FOLDER
    assert beta.source_path == "Jingles/beta.flac"
    assert beta.source_id == str((folder / "Jingles" / "beta.flac").resolve())
    assert all(storage.exists(t.file) for t in tracks.values())
    assert "imported 2, updated 0, unchanged 0, skipped 1" in output
    assert "skipped notes.txt: not an audio file (.txt)" in output


def test_without_hints_the_tags_decide_kind_and_genre(station, folder):
    run(folder)

    alpha = Track.objects.get(station=station, title="Alpha")
    assert (alpha.kind, alpha.genre.name, alpha.artist) == (Track.Kind.SONG, "Rock", "Ahava")


def test_running_twice_creates_no_new_tracks(station, folder):
    run(folder, kind="song")
    first = sorted(Track.objects.filter(station=station).values_list("pk", "file"))

    output = run(folder, kind="song")

    assert sorted(Track.objects.filter(station=station).values_list("pk", "file")) == first
    assert "imported 0, updated 0, unchanged 2, skipped 1" in output


def test_a_changed_file_or_new_hint_updates_the_same_track(station, folder):
    run(folder)
    alpha = Track.objects.get(station=station, title="Alpha")
    make_tone(folder / "alpha.mp3", seconds=2.0, title="Alpha (Radio Edit)", artist="Ahava")

    output = run(folder, genre="Pop")

    alpha.refresh_from_db()
    assert alpha.title == "Alpha (Radio Edit)" and alpha.genre.name == "Pop"
    assert storage.exists(alpha.file)
    assert Track.objects.filter(station=station).count() == 2
    assert "imported 0, updated 2, unchanged 0, skipped 1" in output


def test_a_corrupt_file_is_skipped_and_reported(station, folder):
    make_corrupt(folder / "broken.mp3")

    output = run(folder)

    assert not Track.objects.filter(station=station, source_path="broken.mp3").exists()
    assert "skipped broken.mp3: unreadable audio" in output
    assert "imported 2, updated 0, unchanged 0, skipped 2" in output


def test_no_recursive_leaves_subfolders_alone(station, folder):
    output = run(folder, recursive=False)

    assert list(Track.objects.filter(station=station).values_list("title", flat=True)) == ["Alpha"]
    assert "imported 1, updated 0, unchanged 0, skipped 1" in output


def test_a_new_genre_name_is_created_once_and_matched_case_insensitively(station, folder):
    run(folder, genre="Mizrahi")
    run(folder, genre="mizrahi")

    assert list(Genre.objects.filter(station=station).values_list("name", flat=True)) == [
        "Mizrahi", "Rock"]


@pytest.mark.parametrize(("options", "message"), [
    ({"station": "nowhere"}, "Unknown station 'nowhere'; known: kol"),
    ({"kind": "symphony"}, "Unknown kind 'symphony'; known: song, jingle,"),
])
def test_unknown_station_or_kind_is_a_clear_error(station, folder, options, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run(folder, **options)

    assert not Track.objects.exists()


def test_a_path_that_is_not_a_folder_is_an_error(station, tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        run(tmp_path / "missing")
