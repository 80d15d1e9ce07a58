"""Playlists on the database (library/playlists.py): smart filters and a static list's place kept."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from library.models import Genre, Playlist, PlaylistItem, Track
from library.playlists import playlist_next, smart_tracks

pytestmark = pytest.mark.django_db


def test_a_smart_playlist_holds_the_playable_tracks_every_rule_allows(station, make_playable):
    jazz = Genre.objects.create(station=station, name="Jazz")
    hour_ago = timezone.now() - timedelta(hours=1)
    keep = make_playable("Keep", "Nina", genre=jazz, year=1965, language="en", cue_in=0.0, cue_out=200.0)
    make_playable("Too long", "Nina", genre=jazz, year=1965, language="en", cue_in=0.0, cue_out=400.0)
    make_playable("Aired", "nina", genre=jazz, year=1966, language="en", cue_in=0.0, cue_out=200.0,
                  last_played_at=hour_ago)
    make_playable("Other artist", "Miles", genre=jazz, year=1965, language="en", cue_in=0.0, cue_out=200.0)
    make_playable("Too new", "Nina", genre=jazz, year=1999, language="en", cue_in=0.0, cue_out=200.0)
    make_playable("Jingle", "Nina", kind=Track.Kind.JINGLE, genre=jazz, year=1965, language="en",
                  cue_in=0.0, cue_out=20.0)
    off = make_playable("Disabled", "Nina", genre=jazz, year=1965, language="en", cue_in=0.0, cue_out=200.0)
    Track.objects.filter(pk=off.pk).update(enabled=False)
    smart = Playlist.objects.create(station=station, name="Nina", slug="nina", kind=Playlist.Kind.SMART,
                                    kinds=["song"], artists=["NINA"], language="EN", year_from=1960,
                                    year_to=1970, max_seconds=300, not_aired_hours=3)
    smart.genres.add(jazz)
    assert [t.title for t in smart_tracks(smart)] == ["Keep"]
    smart.not_aired_hours = None
    smart.save()
    assert {t.title for t in smart_tracks(smart)} == {"Keep", "Aired"}
    assert keep in playlist_next(smart, count=5)


def test_a_static_playlist_keeps_its_place_and_skips_what_cannot_play(station, make_playable):
    tracks = [make_playable(f"T{n}", f"A{n}") for n in range(4)]
    playlist = Playlist.objects.create(station=station, name="Morning", slug="morning")
    for n, track in enumerate(tracks):
        PlaylistItem.objects.create(playlist=playlist, track=track, position=n)
    assert [t.title for t in playlist_next(playlist, count=3)] == ["T0", "T1", "T2"]
    Track.objects.filter(pk=tracks[3].pk).update(enabled=False)
    assert [t.title for t in playlist_next(playlist, count=2)] == ["T0", "T1"]  # cursor 3 of 3 playable
    playlist.refresh_from_db()
    assert playlist.cursor == 5 and playlist.last_track_id == tracks[1].pk


def test_a_random_static_playlist_keeps_its_cycle_between_calls(station, make_playable):
    tracks = [make_playable(f"R{n}", f"A{n}") for n in range(5)]
    playlist = Playlist.objects.create(station=station, name="Mix", slug="mix", order=Playlist.Order.RANDOM)
    for n, track in enumerate(tracks):
        PlaylistItem.objects.create(playlist=playlist, track=track, position=n)
    rng = random.Random(5)
    picks = [playlist_next(playlist, rng=rng)[0].title for _ in range(10)]
    assert sorted(picks[:5]) == sorted(picks[5:]) == [f"R{n}" for n in range(5)]


def test_the_admin_lists_adds_and_edits_playlists(admin_client, station, make_playable):
    track = make_playable("Boker", "Kol")
    playlist = Playlist.objects.create(station=station, name="Morning", slug="morning")
    PlaylistItem.objects.create(playlist=playlist, track=track, position=0)
    assert admin_client.get("/admin/library/playlist/").status_code == 200
    assert admin_client.get("/admin/library/playlist/add/").status_code == 200
    page = admin_client.get(f"/admin/library/playlist/{playlist.pk}/change/")
    assert page.status_code == 200
    assert f'value="{track.pk}"'.encode() in page.content  # the item's track, in the inline
