"""The playlists API: static lists and smart filters, station-scoped, editors write, members read."""

from __future__ import annotations

import pytest

from library.models import Genre, Playlist, PlaylistItem, Track
from library.playlists import playlist_next
from radio.models import AuditEntry, Role
from tests.library.audio import make_tone

pytestmark = pytest.mark.django_db


def playlists_url(station, *rest) -> str:
    return "/".join([f"/api/v1/stations/{station.slug}/playlists", *map(str, rest)])


@pytest.fixture(scope="session")
def tone_file(tmp_path_factory):
    return make_tone(tmp_path_factory.mktemp("tones") / "tone.mp3", seconds=1.0)


@pytest.fixture
def make_playable(station, tone_file):
    """make_playable(title, artist="", station=…, **fields) → a Track that can go on air."""
    from library.services import track_import_file

    def make(title: str, artist: str = "", *, station=station, **fields) -> Track:
        track = track_import_file(station=station, path=tone_file, source=Track.Source.UPLOAD,
                                  original_name=f"{title}.mp3", hints={"title": title, "artist": artist})
        Track.objects.filter(pk=track.pk).update(**{"analysis": Track.Analysis.OK, **fields})
        track.refresh_from_db()
        return track

    return make


@pytest.fixture
def editor(station, make_user):
    return make_user(Role.EDITOR, station)


@pytest.fixture
def editor_client(api_client, editor):
    api_client.force_authenticate(editor)
    api_client.raise_request_exception = False  # a 500 must show as a 500
    return api_client


@pytest.fixture
def viewer_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    return api_client


def static_playlist(station, name: str, tracks: list[Track], **fields) -> Playlist:
    playlist = Playlist.objects.create(station=station, name=name, slug=name.lower(), **fields)
    for position, track in enumerate(tracks):
        PlaylistItem.objects.create(playlist=playlist, track=track, position=position)
    return playlist


# --- static lists -------------------------------------------------------------

def test_a_static_playlist_is_created_with_its_items_and_read_back_in_that_order(editor_client, station,
                                                                                  editor, make_playable):
    a, b, c = (make_playable(title) for title in ("A", "B", "C"))
    response = editor_client.post(playlists_url(station),
                                  {"name": "Boker Tov", "items": [c.pk, a.pk, c.pk, b.pk]}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["slug"] == "boker-tov" and created["kind"] == "static" and created["order"] == "in_order"
    assert created["items"] == [c.pk, a.pk, c.pk, b.pk]  # the model allows a track twice
    assert editor_client.get(playlists_url(station, created["id"])).json()["items"] == [c.pk, a.pk, c.pk, b.pk]
    listed = editor_client.get(playlists_url(station)).json()
    assert [(p["name"], p["items"]) for p in listed["results"]] == [("Boker Tov", [c.pk, a.pk, c.pk, b.pk])]
    entry = AuditEntry.objects.get(action="playlist.add")
    assert entry.actor == editor and entry.after["items"] == [c.pk, a.pk, c.pk, b.pk]

    tracks = editor_client.get(playlists_url(station, created["id"], "tracks")).json()
    assert tracks["count"] == 4 and [t["title"] for t in tracks["results"]] == ["C", "A", "C", "B"]


def test_writing_items_replaces_the_list_in_the_order_given(editor_client, station, make_playable):
    a, b, c = (make_playable(title) for title in ("A", "B", "C"))
    playlist = static_playlist(station, "Morning", [a, b])
    response = editor_client.patch(playlists_url(station, playlist.pk), {"items": [c.pk, b.pk]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["items"] == [c.pk, b.pk]
    assert list(playlist.items.values_list("track_id", flat=True)) == [c.pk, b.pk]
    # A rename leaves the items and the slug alone.
    response = editor_client.patch(playlists_url(station, playlist.pk), {"name": "Late Morning"}, format="json")
    assert response.json()["items"] == [c.pk, b.pk] and response.json()["slug"] == "morning"
    assert AuditEntry.objects.filter(action="playlist.update", object_id=str(playlist.pk)).count() == 2
    # PUT takes the whole playlist; an empty list empties it.
    response = editor_client.put(playlists_url(station, playlist.pk), {"name": "Late Morning", "items": []},
                                 format="json")
    assert response.status_code == 200 and response.json()["items"] == []
    assert not playlist.items.exists()


def test_items_of_another_station_or_unknown_ids_are_a_400_naming_them(editor_client, station, other_station,
                                                                       make_playable):
    ours = make_playable("Ours")
    theirs = Track.objects.create(station=other_station, title="Theirs", source=Track.Source.UPLOAD)
    playlist = static_playlist(station, "Morning", [ours])
    response = editor_client.patch(playlists_url(station, playlist.pk),
                                   {"items": [ours.pk, theirs.pk, 999999, theirs.pk]}, format="json")
    assert response.status_code == 400
    assert response.json()["items"] == [f"No track on this station has the ids {theirs.pk}, 999999."]
    assert list(playlist.items.values_list("track_id", flat=True)) == [ours.pk]  # untouched
    for bad in ("1.5", "true", "0", '"x"', "null", "[[1]]"):
        raw = f'{{"items": [{bad}]}}' if bad != "null" else '{"items": null}'
        response = editor_client.generic("PATCH", playlists_url(station, playlist.pk), raw,
                                         content_type="application/json")
        assert response.status_code == 400 and "items" in response.json(), bad


# --- smart lists --------------------------------------------------------------

def test_a_smart_playlist_is_created_and_its_tracks_are_what_the_filter_picks(editor_client, station,
                                                                              make_playable):
    jazz = Genre.objects.create(station=station, name="Jazz")
    keep = make_playable("Keep", "Nina", genre=jazz, year=1965, cue_in=0.0, cue_out=200.0)
    also = make_playable("Also", "nina", genre=jazz, year=1968, cue_in=0.0, cue_out=100.0)
    make_playable("Too new", "Nina", genre=jazz, year=1999, cue_in=0.0, cue_out=200.0)
    make_playable("Too long", "Nina", genre=jazz, year=1965, cue_in=0.0, cue_out=400.0)
    make_playable("Other artist", "Miles", genre=jazz, year=1965, cue_in=0.0, cue_out=200.0)
    make_playable("No genre", "Nina", year=1965, cue_in=0.0, cue_out=200.0)
    Track.objects.create(station=station, title="Not analysed", artist="Nina", genre=jazz, year=1965,
                         source=Track.Source.UPLOAD)
    response = editor_client.post(playlists_url(station), {
        "name": "Nina 60s", "kind": "smart", "kinds": ["song"], "genres": [jazz.pk], "artists": ["NINA"],
        "year_from": 1960, "year_to": 1970, "max_seconds": 300, "not_aired_hours": 3}, format="json")
    assert response.status_code == 201, response.json()
    playlist = response.json()
    assert playlist["genres"] == [jazz.pk] and playlist["artists"] == ["NINA"] and playlist["items"] == []

    tracks = editor_client.get(playlists_url(station, playlist["id"], "tracks")).json()
    assert tracks["count"] == 2 and {t["id"] for t in tracks["results"]} == {keep.pk, also.pk}
    # `limit` keeps the least recently played: the count and the page follow it.
    editor_client.patch(playlists_url(station, playlist["id"]), {"limit": 1}, format="json")
    tracks = editor_client.get(playlists_url(station, playlist["id"], "tracks")).json()
    assert tracks["count"] == 1 and len(tracks["results"]) == 1


def test_smart_rules_on_a_static_playlist_and_items_on_a_smart_one_are_refused(editor_client, station,
                                                                               make_playable):
    track = make_playable("A")
    response = editor_client.post(playlists_url(station), {"name": "Mixed", "artists": ["Nina"], "limit": 5},
                                  format="json")
    assert response.status_code == 400 and set(response.json()) == {"artists", "limit"}
    response = editor_client.post(playlists_url(station),
                                  {"name": "Mixed", "kind": "smart", "items": [track.pk]}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"items"}
    # Empty rules are no rules: a static playlist read back can be written back as it is.
    static = static_playlist(station, "Static", [track])
    body = editor_client.get(playlists_url(station, static.pk)).json()
    assert editor_client.put(playlists_url(station, static.pk), body, format="json").status_code == 200
    # Turning a static list smart while it still has items is refused until the items are cleared.
    response = editor_client.patch(playlists_url(station, static.pk), {"kind": "smart"}, format="json")
    assert response.status_code == 400 and "items" in response.json()
    response = editor_client.patch(playlists_url(station, static.pk), {"kind": "smart", "items": []},
                                   format="json")
    assert response.status_code == 200 and response.json()["kind"] == "smart"
    assert not Playlist.objects.filter(name="Mixed").exists()


# --- validation ---------------------------------------------------------------

def test_bad_ranges_foreign_genres_and_bad_values_are_400s_naming_the_field(editor_client, station,
                                                                             other_station):
    foreign = Genre.objects.create(station=other_station, name="Theirs")
    smart = {"name": "Smart", "kind": "smart"}
    cases = [
        ({"year_from": 1990, "year_to": 1980}, "year_to"),
        ({"min_seconds": 300, "max_seconds": 200}, "max_seconds"),
        ({"genres": [foreign.pk]}, "genres"),
        ({"kinds": ["polka"]}, "kinds"),
        ({"limit": 0}, "limit"),
        ({"min_seconds": -1}, "min_seconds"),
        ({"not_aired_hours": 10**9}, "not_aired_hours"),
        ({"order": "backwards"}, "order"),
        ({"artists": [""]}, "artists"),
    ]
    for fields, field in cases:
        response = editor_client.post(playlists_url(station), {**smart, **fields}, format="json")
        assert response.status_code == 400, (fields, response.content)
        assert field in response.json(), (fields, response.json())
    response = editor_client.post(playlists_url(station), {**smart, "year_from": 1980, "year_to": 1990},
                                  format="json")
    assert response.status_code == 201
    # A change to one end of a pair is checked against the stored other end.
    response = editor_client.patch(playlists_url(station, response.json()["id"]), {"year_to": 1970},
                                   format="json")
    assert response.status_code == 400 and "year_to" in response.json()
    assert Playlist.objects.get().year_to == 1990


def test_a_duplicate_name_or_slug_is_a_400_not_a_500(editor_client, station, other_station):
    Playlist.objects.create(station=station, name="Morning", slug="morning")
    Playlist.objects.create(station=other_station, name="Evening", slug="evening")
    for body, field in (({"name": "morning"}, "name"), ({"name": "Morning!"}, "name"),
                        ({"name": "Early", "slug": "morning"}, "slug"), ({"name": "!!!"}, "slug"),
                        ({"name": "Early", "slug": "no spaces"}, "slug")):
        response = editor_client.post(playlists_url(station), body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), (body, response.json())
    # Another station's names are not in the way; Hebrew names make Hebrew slugs.
    assert editor_client.post(playlists_url(station), {"name": "Evening"}, format="json").status_code == 201
    response = editor_client.post(playlists_url(station), {"name": "בוקר טוב"}, format="json")
    assert response.status_code == 201 and response.json()["slug"] == "בוקר-טוב"
    response = editor_client.post(playlists_url(station), {"name": "ערב", "slug": "ערב-טוב"}, format="json")
    assert response.status_code == 201 and response.json()["slug"] == "ערב-טוב"


# --- the place in the list ----------------------------------------------------

def test_rewind_starts_the_playlist_from_the_top_again(editor_client, station, make_playable):
    tracks = [make_playable(f"T{n}") for n in range(4)]
    playlist = static_playlist(station, "Morning", tracks)
    assert [t.title for t in playlist_next(playlist, count=3)] == ["T0", "T1", "T2"]
    response = editor_client.post(playlists_url(station, playlist.pk, "rewind"))
    assert response.status_code == 200 and response.json()["id"] == playlist.pk
    assert [t.title for t in playlist_next(playlist, count=2)] == ["T0", "T1"]
    assert AuditEntry.objects.filter(action="playlist.rewind", object_id=str(playlist.pk)).exists()

    shuffled = static_playlist(station, "Mix", tracks, order=Playlist.Order.RANDOM)
    playlist_next(shuffled, count=2)
    editor_client.post(playlists_url(station, shuffled.pk, "rewind"))
    shuffled.refresh_from_db()
    assert (shuffled.cursor, shuffled.cycle, shuffled.last_track) == (0, [], None)


# --- who may do what ----------------------------------------------------------

def test_a_viewer_reads_playlists_but_cannot_change_them(viewer_client, station, make_playable):
    track = make_playable("A")
    playlist = static_playlist(station, "Morning", [track])
    assert viewer_client.get(playlists_url(station)).status_code == 200
    assert viewer_client.get(playlists_url(station, playlist.pk)).json()["items"] == [track.pk]
    assert viewer_client.get(playlists_url(station, playlist.pk, "tracks")).json()["count"] == 1
    for method, url, body in (("post", playlists_url(station), {"name": "Mine"}),
                              ("patch", playlists_url(station, playlist.pk), {"name": "Renamed"}),
                              ("put", playlists_url(station, playlist.pk), {"name": "Renamed"}),
                              ("delete", playlists_url(station, playlist.pk), None),
                              ("post", playlists_url(station, playlist.pk, "rewind"), None)):
        response = getattr(viewer_client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url)
        assert "editor" in response.json()["detail"]
    playlist.refresh_from_db()
    assert playlist.name == "Morning" and Playlist.objects.count() == 1


def test_an_editor_deletes_a_playlist_and_the_journal_keeps_it(editor_client, station, make_playable):
    playlist = static_playlist(station, "Morning", [make_playable("A")])
    assert editor_client.delete(playlists_url(station, playlist.pk)).status_code == 204
    assert not Playlist.objects.exists() and not PlaylistItem.objects.exists()
    assert AuditEntry.objects.get(action="playlist.delete").before["name"] == "Morning"


def test_a_member_of_another_station_cannot_see_or_touch_its_playlists(api_client, station, other_station,
                                                                       make_user):
    playlist = Playlist.objects.create(station=station, name="Morning", slug="morning")
    api_client.force_authenticate(make_user(Role.ADMIN, other_station))
    for url in (playlists_url(station), playlists_url(station, playlist.pk),
                playlists_url(station, playlist.pk, "tracks")):
        assert api_client.get(url).status_code == 403, url
    assert api_client.patch(playlists_url(station, playlist.pk), {"name": "Hijacked"},
                            format="json").status_code == 403
    assert api_client.delete(playlists_url(station, playlist.pk)).status_code == 403
    # Through its own station's URL the playlist is not there at all.
    assert api_client.get(playlists_url(other_station, playlist.pk)).status_code == 404
    assert Playlist.objects.get().name == "Morning"


def test_anonymous_requests_get_401(api_client, station):
    playlist = Playlist.objects.create(station=station, name="Morning", slug="morning")
    for url in (playlists_url(station), playlists_url(station, playlist.pk),
                playlists_url(station, playlist.pk, "tracks")):
        assert api_client.get(url).status_code == 401, url
    assert api_client.post(playlists_url(station), {"name": "x"}, format="json").status_code == 401
    assert api_client.post(playlists_url(station, playlist.pk, "rewind")).status_code == 401
    assert api_client.delete(playlists_url(station, playlist.pk)).status_code == 401
