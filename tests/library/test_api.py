"""The library API: browse, edit by hand, upload, listen (with ranges), genres, syncs, duplicates."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from celery.signals import before_task_publish
from channels.db import database_sync_to_async
from django.db import connections
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from library import storage
from library.models import Genre, Track
from radio.models import AuditEntry, Role, SyncRun
from tests.library.audio import make_tone

pytestmark = pytest.mark.django_db


def tracks_url(station, *rest) -> str:
    return "/".join([f"/api/v1/stations/{station.slug}/tracks", *map(str, rest)])


def make_track(station, title: str, **fields) -> Track:
    fields.setdefault("source", Track.Source.UPLOAD)
    return Track.objects.create(station=station, title=title, **fields)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def viewer_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    return api_client


@pytest.fixture
def editor(station, make_user):
    return make_user(Role.EDITOR, station)


@pytest.fixture
def editor_client(api_client, editor):
    api_client.force_authenticate(editor)
    return api_client


@pytest.fixture
def uploaded(editor_client, station, tmp_path):
    """A real MP3 uploaded through the API: (response json, file bytes)."""
    path = make_tone(tmp_path / "Morning Song.mp3", seconds=2.0, title="Boker Tov", artist="Kol Band",
                     cover=True)
    with path.open("rb") as handle:
        response = editor_client.post(tracks_url(station), {"file": handle, "kind": "jingle"},
                                      format="multipart")
    assert response.status_code == 201, response.json()
    return response.json(), path.read_bytes()


# --- access -------------------------------------------------------------------

def test_anonymous_requests_get_401(api_client, station):
    track = make_track(station, "Shalom")
    for url in (tracks_url(station), tracks_url(station, track.pk), tracks_url(station, track.pk, "audio"),
                f"/api/v1/stations/{station.slug}/genres", f"/api/v1/stations/{station.slug}/sync-runs",
                f"/api/v1/stations/{station.slug}/duplicates"):
        response = api_client.get(url)
        assert response.status_code == 401, url
        assert "detail" in response.json()
    assert api_client.post(tracks_url(station), {}).status_code == 401
    assert api_client.patch(tracks_url(station, track.pk), {"title": "x"}).status_code == 401


def test_member_of_another_station_gets_403_on_everything(api_client, station, other_station, make_user):
    api_client.force_authenticate(make_user(Role.ADMIN, other_station))
    track = make_track(station, "Shalom")
    base = f"/api/v1/stations/{station.slug}"
    for url in (tracks_url(station), tracks_url(station, track.pk), tracks_url(station, track.pk, "audio"),
                tracks_url(station, track.pk, "cover"), f"{base}/genres", f"{base}/sync-runs",
                f"{base}/duplicates"):
        assert api_client.get(url).status_code == 403, url
    assert api_client.patch(tracks_url(station, track.pk), {"title": "Hijacked"},
                            format="json").status_code == 403
    assert api_client.post(f"{base}/genres", {"name": "Rock"}, format="json").status_code == 403
    assert api_client.post(f"{base}/sync-runs").status_code == 403
    track.refresh_from_db()
    assert track.title == "Shalom" and not Genre.objects.exists()


def test_unknown_station_or_track_is_404(viewer_client, station, other_station):
    assert viewer_client.get("/api/v1/stations/nope/tracks").status_code == 404
    foreign = make_track(other_station, "Elsewhere")
    assert viewer_client.get(tracks_url(station, foreign.pk)).status_code == 404


def test_viewer_reads_but_cannot_edit_upload_add_genres_or_sync(viewer_client, station):
    track = make_track(station, "Shalom")
    assert viewer_client.get(tracks_url(station, track.pk)).status_code == 200
    response = viewer_client.patch(tracks_url(station, track.pk), {"title": "x"}, format="json")
    assert response.status_code == 403 and "editor" in response.json()["detail"]
    assert viewer_client.post(tracks_url(station), {"file": b""}, format="multipart").status_code == 403
    assert viewer_client.post(f"/api/v1/stations/{station.slug}/genres", {"name": "Rock"},
                              format="json").status_code == 403
    assert viewer_client.post(f"/api/v1/stations/{station.slug}/sync-runs").status_code == 403
    track.refresh_from_db()
    assert track.title == "Shalom" and track.edited_fields == []


# --- browsing -----------------------------------------------------------------

def test_list_searches_filters_and_orders(viewer_client, station, other_station):
    rock = Genre.objects.create(station=station, name="Rock")
    make_track(station, "Yerushalayim Shel Zahav", artist="Naomi Shemer", album="Gold", genre=rock,
               play_count=5, duration=240)
    make_track(station, "Station ID", kind=Track.Kind.JINGLE, duration=8, language="he")
    make_track(station, "Old Ad", kind=Track.Kind.COMMERCIAL, enabled=False, play_count=9,
               missing_since="2024-01-01T00:00:00Z", source=Track.Source.DRIVE, source_id="f1")
    make_track(other_station, "Yerushalayim Shel Zahav", artist="Naomi Shemer")

    def titles(query: str = "") -> list[str]:
        response = viewer_client.get(tracks_url(station) + query)
        assert response.status_code == 200, response.json()
        return [t["title"] for t in response.json()["results"]]

    assert sorted(titles()) == ["Old Ad", "Station ID", "Yerushalayim Shel Zahav"]
    assert viewer_client.get(tracks_url(station)).json()["count"] == 3
    assert titles("?search=shemer") == ["Yerushalayim Shel Zahav"]
    assert titles("?search=gold") == ["Yerushalayim Shel Zahav"]
    assert titles("?kind=jingle") == ["Station ID"]
    assert titles(f"?genre={rock.pk}") == ["Yerushalayim Shel Zahav"]
    assert titles("?enabled=false") == ["Old Ad"]
    assert titles("?missing=true") == ["Old Ad"]
    assert sorted(titles("?missing=false")) == ["Station ID", "Yerushalayim Shel Zahav"]
    assert titles("?source=drive") == ["Old Ad"]
    assert titles("?language=he") == ["Station ID"]
    assert titles("?analysis=ok") == []
    assert titles("?ordering=-play_count") == ["Old Ad", "Yerushalayim Shel Zahav", "Station ID"]
    assert titles("?ordering=title") == ["Old Ad", "Station ID", "Yerushalayim Shel Zahav"]
    assert titles("?ordering=duration&kind=jingle") == ["Station ID"]
    assert viewer_client.get(tracks_url(station) + "?kind=banana").status_code == 400


def test_detail_shows_playability_hand_edits_and_file_urls(viewer_client, station):
    track = make_track(station, "Shalom", edited_fields=["title"], analysis=Track.Analysis.OK)
    data = viewer_client.get(tracks_url(station, track.pk)).json()
    assert data["is_playable"] is False  # nothing cached yet
    assert data["edited_fields"] == ["title"]
    assert data["audio_url"] is None and data["cover_url"] is None
    assert data["missing"] is False


# --- editing ------------------------------------------------------------------

def test_editor_edit_pins_the_fields_and_is_journaled(editor_client, editor, station):
    jazz = Genre.objects.create(station=station, name="Jazz")
    track = make_track(station, "Shalom", artist="Unknown", play_count=3)
    response = editor_client.patch(tracks_url(station, track.pk),
                                   {"title": "Shalom Aleichem", "genre": jazz.pk, "cue_in": 1.5,
                                    "play_count": 999, "checksum": "f" * 32}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["genre_name"] == "Jazz"
    track.refresh_from_db()
    assert (track.title, track.genre, track.cue_in) == ("Shalom Aleichem", jazz, 1.5)
    assert track.edited_fields == ["cue_in", "genre", "title"]
    assert (track.play_count, track.checksum) == (3, "")  # read-only fields are ignored
    entry = AuditEntry.objects.get(action="track.update")
    assert entry.actor == editor and entry.station == station
    assert entry.before["title"] == "Shalom" and entry.after["title"] == "Shalom Aleichem"


def test_genre_of_another_station_is_refused(editor_client, station, other_station):
    foreign = Genre.objects.create(station=other_station, name="Rock")
    track = make_track(station, "Shalom")
    response = editor_client.patch(tracks_url(station, track.pk), {"genre": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "genre" in response.json()
    track.refresh_from_db()
    assert track.genre is None and track.edited_fields == []


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "banana"}, "kind"),
    ({"cue_in": -1}, "cue_in"),
    ({"cue_in": 5, "cue_out": 3}, "cue_out"),
    ({"cue_out": 0.5}, "cue_out"),  # before the stored cue in
    ({"title": ""}, "title"),
    ({"year": "soon"}, "year"),
    ({"enabled": "perhaps"}, "enabled"),
])
def test_bad_values_get_400_naming_the_field(editor_client, station, change, field):
    track = make_track(station, "Shalom", cue_in=2.0)
    response = editor_client.patch(tracks_url(station, track.pk), change, format="json")
    assert response.status_code == 400
    assert field in response.json()
    track.refresh_from_db()
    assert (track.title, track.cue_in, track.edited_fields) == ("Shalom", 2.0, [])


def test_cue_in_must_stay_inside_the_track(editor_client, station):
    track = make_track(station, "Shalom", duration=30.0)
    response = editor_client.patch(tracks_url(station, track.pk), {"cue_in": 31}, format="json")
    assert response.status_code == 400 and "cue_in" in response.json()
    response = editor_client.patch(tracks_url(station, track.pk), {"cue_in": 1, "cue_out": 29.5},
                                   format="json")
    assert response.status_code == 200


# --- upload and listening -----------------------------------------------------

def test_upload_of_a_real_mp3_becomes_a_cached_track(uploaded, station, editor):
    data, _content = uploaded
    assert (data["title"], data["artist"], data["kind"]) == ("Boker Tov", "Kol Band", "jingle")
    assert data["source"] == "upload" and data["mime_type"] == "audio/mpeg"
    assert 1.9 < data["duration"] < 2.2
    assert data["audio_url"].endswith(f"/tracks/{data['id']}/audio")
    track = Track.objects.get(pk=data["id"])
    assert track.station == station and track.source_path == "Morning Song.mp3"
    assert storage.exists(track.file) and track.file_checksum == track.checksum
    assert AuditEntry.objects.filter(action="track.import", actor=editor, object_id=str(track.pk)).exists()


def test_upload_hints_set_genre_and_title(editor_client, station, tmp_path, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # spooled to disk by Django, as large uploads are
    news = Genre.objects.create(station=station, name="News")
    path = make_tone(tmp_path / "x.mp3", seconds=1.0, title="Tagged")
    with path.open("rb") as handle:
        response = editor_client.post(tracks_url(station),
                                      {"file": handle, "genre": news.pk, "title": "Evening News"},
                                      format="multipart")
    assert response.status_code == 201, response.json()
    assert (response.json()["title"], response.json()["genre"]) == ("Evening News", news.pk)
    assert response.json()["mime_type"] == "audio/mpeg"


def test_audio_is_served_whole_and_in_ranges(uploaded, viewer_client, station):
    data, content = uploaded
    url = tracks_url(station, data["id"], "audio")
    size = len(content)

    whole = viewer_client.get(url)
    assert whole.status_code == 200
    assert whole["Content-Type"] == "audio/mpeg" and whole["Accept-Ranges"] == "bytes"
    assert int(whole["Content-Length"]) == size and body(whole) == content

    first = viewer_client.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first["Content-Range"] == f"bytes 0-99/{size}" and first["Content-Length"] == "100"
    assert body(first) == content[:100]

    rest = viewer_client.get(url, headers={"Range": "bytes=1000-"})
    assert rest.status_code == 206 and body(rest) == content[1000:]
    assert rest["Content-Range"] == f"bytes 1000-{size - 1}/{size}"

    tail = viewer_client.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and body(tail) == content[-50:]

    beyond = viewer_client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"

    # A player that asks only for audio still gets it.
    picky = viewer_client.get(url, headers={"Accept": "audio/mpeg", "Range": "bytes=0-9"})
    assert picky.status_code == 206 and body(picky) == content[:10]


def test_audio_with_an_api_token(uploaded, station, make_user, client):
    data, content = uploaded
    token = Token.objects.create(user=make_user(Role.VIEWER, station))
    response = client.get(tracks_url(station, data["id"], "audio"),
                          headers={"Authorization": f"Token {token.key}", "Range": "bytes=10-19"})
    assert response.status_code == 206 and body(response) == content[10:20]


@pytest.fixture
def cached_track(station, tmp_path) -> tuple[Track, bytes]:
    path = make_tone(tmp_path / "long.mp3", seconds=20.0)  # ~320 KB: more than one chunk
    rel, md5, size = storage.store_copy(station.slug, path)
    track = make_track(station, "Long", file=rel, file_checksum=md5, checksum=md5, size=size,
                       mime_type="audio/mpeg")
    return track, path.read_bytes()


@pytest.mark.django_db(transaction=True)
async def test_audio_streams_without_buffering_under_asgi(station, cached_track, make_user):
    track, content = cached_track
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    token = await database_sync_to_async(Token.objects.create)(user=viewer)
    client, auth = AsyncClient(), {"Authorization": f"Token {token.key}"}
    url = tracks_url(station, track.pk, "audio")
    try:
        whole = await client.get(url, headers=auth)
        assert whole.status_code == 200 and whole.is_async  # async iterator: no read-it-all fallback
        chunks = [chunk async for chunk in whole.streaming_content]
        assert len(chunks) > 1 and b"".join(chunks) == content

        part = await client.get(url, headers={**auth, "Range": "bytes=300000-"})
        assert part.status_code == 206
        assert b"".join([c async for c in part.streaming_content]) == content[300000:]
    finally:
        # The test client, unlike a server, leaves the view thread's connection open.
        await sync_to_async(connections.close_all)()


def test_cover_is_served_when_the_file_had_one(uploaded, viewer_client, station):
    data, _content = uploaded
    assert data["cover_url"].endswith(f"/tracks/{data['id']}/cover")
    response = viewer_client.get(data["cover_url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert body(response).startswith(b"\x89PNG")


def test_audio_and_cover_are_404_when_absent(viewer_client, station):
    track = make_track(station, "Not downloaded yet")
    response = viewer_client.get(tracks_url(station, track.pk, "audio"))
    assert response.status_code == 404 and "detail" in response.json()
    assert viewer_client.get(tracks_url(station, track.pk, "cover")).status_code == 404


def test_upload_of_text_renamed_mp3_is_rejected(editor_client, station, tmp_path):
    fake = tmp_path / "song.mp3"
    fake.write_text("This is a shopping list, not a song.\n" * 50)
    with fake.open("rb") as handle:
        response = editor_client.post(tracks_url(station), {"file": handle}, format="multipart")
    assert response.status_code == 400
    assert "song.mp3" in response.json()["file"][0]
    assert not Track.objects.exists()


def test_upload_without_a_file_names_the_field(editor_client, station):
    response = editor_client.post(tracks_url(station), {"kind": "song"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_upload_over_the_size_limit_is_refused(editor_client, station, tmp_path, settings):
    settings.LIBRARY_MAX_UPLOAD_MB = 0.01  # about 10 KB
    small_over = make_tone(tmp_path / "a.mp3", seconds=2.0)  # ~32 KB: caught after parsing
    large = make_tone(tmp_path / "b.mp3", seconds=8.0)  # ~128 KB: refused by Content-Length
    for path in (small_over, large):
        with path.open("rb") as handle:
            response = editor_client.post(tracks_url(station), {"file": handle}, format="multipart")
        assert response.status_code == 413
        assert "upload limit" in response.json()["detail"]
        assert response.json()["file"] == [response.json()["detail"]]
    assert not Track.objects.exists()


# --- genres, sync runs, duplicates -----------------------------------------------

def test_genres_are_listed_and_added_once_per_station(editor_client, station, other_station):
    Genre.objects.create(station=other_station, name="Rock")  # another station may have it
    url = f"/api/v1/stations/{station.slug}/genres"
    response = editor_client.post(url, {"name": "Rock"}, format="json")
    assert response.status_code == 201, response.json()
    make_track(station, "Song", genre_id=response.json()["id"])
    listed = editor_client.get(url).json()["results"]
    assert [(g["name"], g["track_count"]) for g in listed] == [("Rock", 1)]
    duplicate = editor_client.post(url, {"name": "rock"}, format="json")
    assert duplicate.status_code == 400 and "name" in duplicate.json()
    assert Genre.objects.filter(station=station).count() == 1
    assert AuditEntry.objects.filter(action="genre.add", station=station).count() == 1


def test_sync_runs_are_listed_and_filtered(viewer_client, station, other_station):
    SyncRun.objects.create(station=station, kind=SyncRun.Kind.DRIVE_FULL, status=SyncRun.Status.OK,
                           counts={"new": 3})
    SyncRun.objects.create(station=station, kind=SyncRun.Kind.DRIVE_CHANGES,
                           status=SyncRun.Status.FAILED, error="Drive said 500")
    SyncRun.objects.create(station=other_station, kind=SyncRun.Kind.DRIVE_FULL)
    url = f"/api/v1/stations/{station.slug}/sync-runs"
    assert viewer_client.get(url).json()["count"] == 2
    failed = viewer_client.get(url + "?status=failed").json()["results"]
    assert [(r["kind"], r["error"]) for r in failed] == [("drive_changes", "Drive said 500")]
    assert [r["counts"] for r in viewer_client.get(url + "?kind=drive_full").json()["results"]] == [
        {"new": 3}]


def test_editor_asks_for_a_sync_which_is_queued_on_commit(editor_client, editor, station,
                                                         django_capture_on_commit_callbacks):
    published: list[tuple[str, dict, dict]] = []

    def grab(sender=None, body=None, headers=None, **kwargs):
        published.append((sender, body, headers))

    before_task_publish.connect(grab, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = editor_client.post(f"/api/v1/stations/{station.slug}/sync-runs")
    finally:
        before_task_publish.disconnect(grab)
    assert response.status_code == 202
    assert response.json() == {"detail": "Sync queued."}
    assert len(callbacks) == 1
    sent = [(args, headers) for name, (args, _kw, _embed), headers in published
            if name == "library.tasks.drive_sync"]
    assert [list(args) for args, _headers in sent] == [[station.pk, editor.pk]]
    _forget_queued(sent[0][1]["id"])


def _forget_queued(task_id: str) -> None:
    """Take the message back off the broker so no later test's worker runs it."""
    from radio.celery_heartbeat import redis_client

    client = redis_client()
    for raw in client.lrange("sync", 0, -1):
        if json.loads(raw).get("headers", {}).get("id") == task_id:
            client.lrem("sync", 1, raw)


def test_duplicates_groups_same_file_and_same_song(viewer_client, station, other_station):
    a = make_track(station, "Hallelujah", artist="Milk & Honey", checksum="a" * 32)
    b = make_track(station, "Hallelujah (Remastered)", artist="MILK & HONEY", checksum="a" * 32)
    c = make_track(station, "Erev Shel Shoshanim", artist="The Dudaim", checksum="c" * 32)
    d = make_track(station, "erev shel shoshanim!", artist="THE DUDAIM", checksum="d" * 32)
    make_track(station, "Unique", artist="Solo", checksum="e" * 32)
    make_track(other_station, "Erev Shel Shoshanim", artist="The Dudaim", checksum="c" * 32)

    data = viewer_client.get(f"/api/v1/stations/{station.slug}/duplicates").json()
    assert [(g["key"], g["count"], [t["id"] for t in g["tracks"]]) for g in data["same_file"]] == [
        ("a" * 32, 2, [a.pk, b.pk])]
    likely = {frozenset(t["id"] for t in g["tracks"]) for g in data["likely"]}
    assert likely == {frozenset({a.pk, b.pk}), frozenset({c.pk, d.pk})}
    group = next(g for g in data["likely"] if c.pk in {t["id"] for t in g["tracks"]})
    assert {t["title"] for t in group["tracks"]} == {"Erev Shel Shoshanim", "erev shel shoshanim!"}


def test_openapi_schema_documents_the_library(viewer_client):
    response = viewer_client.get("/api/schema")
    assert response.status_code == 200
    for path in ("tracks/{id}/audio", "genres", "sync-runs", "duplicates"):
        assert f"/api/v1/stations/{{station_slug}}/{path}".encode() in response.content
