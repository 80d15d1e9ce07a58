"""Bad input to the library API answers 400 naming the field, never a 500 (on PostgreSQL)."""

from __future__ import annotations

import pytest

from library.models import Genre, Track
from radio.models import Role

pytestmark = pytest.mark.django_db


def tracks_url(station, *rest) -> str:
    return "/".join([f"/api/v1/stations/{station.slug}/tracks", *map(str, rest)])


@pytest.fixture
def editor_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.EDITOR, station))
    api_client.raise_request_exception = False  # a 500 must show as a 500, not as the test's exception
    return api_client


@pytest.fixture
def track(station):
    return Track.objects.create(station=station, title="Shir", source=Track.Source.UPLOAD)


def patch_json(client, url: str, raw: str):
    """PATCH a raw JSON text: `1e400` is valid JSON that Python reads as infinity."""
    return client.generic("PATCH", url, raw, content_type="application/json")


@pytest.mark.parametrize("raw", ["1e400", "-1e400", "1.5", "1e30", "true", "0", "-3", "9223372036854775808",
                                 '"1x"', '"\\u0000"', "[1]", "{}"])
def test_a_genre_that_is_not_a_whole_number_id_is_a_400_naming_genre(editor_client, station, track, raw):
    response = patch_json(editor_client, tracks_url(station, track.pk), f'{{"genre": {raw}}}')
    assert response.status_code == 400, (raw, response.content)
    assert "genre" in response.json()
    track.refresh_from_db()
    assert track.genre is None and "genre" not in track.edited_fields


def test_a_genre_id_of_1_point_5_is_not_taken_as_genre_1(editor_client, station, track):
    genre = Genre.objects.create(station=station, name="Pop")
    response = patch_json(editor_client, tracks_url(station, track.pk), f'{{"genre": {genre.pk}.5}}')
    assert response.status_code == 400
    # Whole numbers still work, as a JSON number, a float with no fraction or a form string.
    for raw in (f"{genre.pk}", f"{genre.pk}.0", f'"{genre.pk}"'):
        response = patch_json(editor_client, tracks_url(station, track.pk), f'{{"genre": {raw}}}')
        assert response.status_code == 200 and response.json()["genre"] == genre.pk, raw


@pytest.mark.parametrize("query", ["genre=1e30", "genre=-1e30", "genre=99999999999999999999", "genre=1.5",
                                   "genre=NaN", "genre=Infinity"])
def test_a_numeric_filter_beyond_an_id_is_a_400_naming_the_filter(editor_client, station, track, query):
    response = editor_client.get(tracks_url(station) + "?" + query)
    assert response.status_code == 400, (query, response.content)
    assert "genre" in response.json()


def test_a_genre_filter_by_id_still_filters(editor_client, station, track):
    genre = Genre.objects.create(station=station, name="Pop")
    Track.objects.create(station=station, title="Pop song", genre=genre, source=Track.Source.UPLOAD)
    response = editor_client.get(tracks_url(station) + f"?genre={genre.pk}")
    assert [t["title"] for t in response.json()["results"]] == ["Pop song"]


@pytest.mark.parametrize("query", ["search=%00", "search=a%00b", "language=%00"])
def test_a_nul_in_a_search_or_text_filter_is_a_400(editor_client, station, track, query):
    response = editor_client.get(tracks_url(station) + "?" + query)
    assert response.status_code == 400, (query, response.content)
    assert query.split("=")[0] in response.json()


def test_viewers_never_see_a_server_path_in_source_id(api_client, station, make_user):
    """A folder import's source_id is the file's absolute path on the server: editors only."""
    Track.objects.create(station=station, title="Local", source=Track.Source.FOLDER,
                         source_id="/srv/onair/music/Local.mp3", source_path="music/Local.mp3")
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    listed = api_client.get(tracks_url(station)).json()["results"][0]
    assert listed["source_id"] is None and listed["source_path"] == "music/Local.mp3"
    assert "/srv/onair" not in api_client.get(tracks_url(station, listed["id"])).content.decode()
    api_client.force_authenticate(make_user(Role.EDITOR, station))
    assert api_client.get(tracks_url(station, listed["id"])).json()["source_id"] == "/srv/onair/music/Local.mp3"
