"""Cheap reads under load: one role lookup per request, now-playing from what the worker published,
the as-run log paged by cursor instead of OFFSET (issue 9)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from playback.models import PlayerState, PlayLog, Reason
from playback.services import (
    _parts_key,
    _status_key,
    now_playing_publish,
    queue_append,
)
from radio.models import Role
from radio.notify import ChannelLoop, send_in_background

pytestmark = pytest.mark.django_db


def url(station, *rest) -> str:
    return "/".join([f"/api/v1/stations/{station.slug}", *map(str, rest)])


@pytest.fixture
def token_client(station, make_user) -> APIClient:
    """A viewer signed in with a token, as API clients are (authentication runs its real queries)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_user(Role.VIEWER, station))}")
    return client


@pytest.fixture
def forget_published(station):
    yield
    cache.delete_many([_status_key(station.pk), _parts_key(station.pk, True), _parts_key(station.pk, False)])


def _membership_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if 'FROM "radio_membership"' in q["sql"]]


def test_a_queue_read_looks_the_role_up_once_in_four_queries(token_client, station, make_playable):
    queue_append(station=station, track=make_playable("Shir"), reason=Reason.AUTODJ)
    with CaptureQueriesContext(connection) as queries:
        response = token_client.get(url(station, "queue"))
    assert response.status_code == 200 and len(response.json()) == 1
    assert len(_membership_queries(queries.captured_queries)) == 1
    # token + user, station, membership, the queue with its tracks and requesters
    assert len(queries.captured_queries) <= 4, [q["sql"][:80] for q in queries.captured_queries]


def test_a_write_also_looks_the_role_up_once(station, make_user, make_playable):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_user(Role.EDITOR, station))}")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url(station, "player", "pause"), {}, format="json")
    assert response.status_code == 202
    assert len(_membership_queries(queries.captured_queries)) == 1


def _status(station, track, *, position: float = 30.0, paused: bool = False) -> dict:
    """The status the playback worker sends (playback/worker.py `status_data`)."""
    now = datetime.now(UTC)
    return {"station": station.slug, "server_time": now.isoformat(),
            "worker": {"up": True, "heartbeat_at": now.isoformat(), "started_at": now.isoformat()},
            "is_playing": True, "paused": paused, "stopped": False, "volume": 70, "database": "up",
            "current": {"id": track.pk, "title": "As published", "artist": track.artist, "kind": track.kind,
                        "duration": 180.0, "cue_in": 0.0, "cue_out": None, "reason": Reason.AUTODJ,
                        "started_at": (now - timedelta(seconds=position)).isoformat(), "position": position}}


def test_now_playing_answers_from_the_published_status_without_reading_the_player_state(
        token_client, station, make_playable, forget_published):
    song = make_playable("Shir", "Zehava", duration=180.0)
    queue_append(station=station, track=make_playable("Next Up", "Arik"), reason=Reason.AUTODJ)
    # The database says nothing plays (no worker lease, no player state): the answer can only
    # come from what the worker published.
    now_playing_publish(station, _status(station, song, position=30.0))
    time.sleep(0.2)
    with CaptureQueriesContext(connection) as queries:
        data = token_client.get(url(station, "now-playing")).json()
    assert (data["is_online"], data["is_playing"], data["paused"]) == (True, True, False)
    now = data["now_playing"]
    assert now["track"]["title"] == "As published" and now["volume"] == 70
    assert 30.2 <= now["elapsed"] < 40.0  # moved on with the clock since it was published
    assert now["remaining"] == pytest.approx(180.0 - now["elapsed"], abs=0.05)
    assert data["playing_next"]["track"]["title"] == "Next Up" and data["queue_length"] == 1
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "playback_playerstate" not in tables and "radio_workerheartbeat" not in tables
    assert len(_membership_queries(queries.captured_queries)) == 1
    assert len(queries.captured_queries) <= 5  # token, station, membership, queue, history

    # The next requests share what plays next and what aired for a moment: auth only.
    with CaptureQueriesContext(connection) as again:
        assert token_client.get(url(station, "now-playing")).json()["queue_length"] == 1
    assert len(again.captured_queries) <= 3


def test_public_now_playing_answers_from_the_published_status_and_names_no_one(
        api_client, station, make_playable, editor_user, forget_published):
    station.public_now_playing = True
    station.save()
    song = make_playable("Shir")
    queue_append(station=station, track=make_playable("Next Up"), actor=editor_user)
    now_playing_publish(station, _status(station, song, paused=True, position=12.0))
    with CaptureQueriesContext(connection) as queries:
        data = api_client.get(f"/api/v1/public/stations/{station.slug}/now-playing").json()
    assert data["paused"] is True and data["now_playing"]["elapsed"] == 12.0  # paused: no clock
    assert "requested_by" not in data["playing_next"]
    assert "playback_playerstate" not in " ".join(q["sql"] for q in queries.captured_queries)


def test_a_stale_published_status_is_not_trusted(token_client, station, make_playable, forget_published):
    song = make_playable("Shir")
    PlayerState.objects.create(station=station, is_playing=True, current_track=song, position=3.0)
    cache.set(_status_key(station.pk), {"status": _status(station, song), "published": time.time() - 60})
    data = token_client.get(url(station, "now-playing")).json()
    # The worker stopped publishing a minute ago and holds no lease: off air, from the database.
    assert (data["is_online"], data["is_playing"], data["now_playing"]) == (False, False, None)


def test_the_status_is_cached_from_the_channel_loop_thread(station, make_playable, forget_published):
    song = make_playable("Shir")
    loop = ChannelLoop(name="test-channels")
    send_in_background(loop)  # as the playback_worker command does
    try:
        now_playing_publish(station, _status(station, song))
        deadline = time.monotonic() + 5
        while cache.get(_status_key(station.pk)) is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        send_in_background(None)
        loop.close()
    assert cache.get(_status_key(station.pk))["status"]["current"]["title"] == "As published"


# --- the as-run log by cursor ---------------------------------------------------------------------

@pytest.fixture
def editor_user(station, make_user):
    return make_user(Role.EDITOR, station)


def _aired(station, track, count: int) -> list[PlayLog]:
    start = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    rows = [PlayLog(station=station, track=track, title=f"Item {n}", artist="A", kind=track.kind,
                    # pairs that started in the same instant: the id keeps their order
                    started_at=start + timedelta(minutes=n // 2), played_seconds=60.0,
                    outcome=PlayLog.Outcome.COMPLETED, reason=Reason.AUTODJ) for n in range(count)]
    return PlayLog.objects.bulk_create(rows)


def test_history_pages_by_cursor_through_every_row_once(token_client, station, make_playable):
    rows = _aired(station, make_playable("Shir"), 123)
    seen, page_url, pages = [], url(station, "history"), 0
    while page_url:
        with CaptureQueriesContext(connection) as queries:
            page = token_client.get(page_url).json()
        assert "count" not in page  # no COUNT over the whole log
        offsets = [int(n) for q in queries.captured_queries for n in re.findall(r"OFFSET (\d+)", q["sql"])]
        assert all(n < 50 for n in offsets), offsets  # never walks the pages before this one
        seen += [r["id"] for r in page["results"]]
        page_url, pages = page["next"], pages + 1
    newest_first = sorted(rows, key=lambda r: (r.started_at, r.pk), reverse=True)
    assert seen == [r.pk for r in newest_first]
    assert pages == 3


def test_history_cursor_keeps_the_asked_order_and_filters(token_client, station, make_playable):
    rows = _aired(station, make_playable("Shir"), 60)
    first = token_client.get(url(station, "history") + "?ordering=started_at").json()
    second = token_client.get(first["next"]).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert ids == [r.pk for r in sorted(rows, key=lambda r: (r.started_at, r.pk))]
    back = token_client.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]
    filtered = token_client.get(url(station, "history") + "?from=2025-05-01T08:20:00Z").json()
    assert len(filtered["results"]) == 20 and filtered["next"] is None
    assert token_client.get(url(station, "history") + "?cursor=not-a-cursor").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_now_playing_answers_from_the_database_within_seconds_while_redis_is_silent(
        process_env, station, make_user, forget_published):
    import json
    import urllib.request
    from urllib.parse import urlsplit

    from tests.asgi_server import uvicorn_server
    from tests.servers import TcpProxy

    token = Token.objects.create(user=make_user(Role.VIEWER, station)).key
    redis_proxy = TcpProxy(urlsplit(process_env["REDIS_URL"]).port)
    env = dict(process_env, REDIS_URL=f"redis://127.0.0.1:{redis_proxy.port}/0")
    try:
        with uvicorn_server(env) as port:
            redis_proxy.blackhole()  # the cache's socket neither answers nor closes
            started = time.monotonic()
            request = urllib.request.Request(f"http://127.0.0.1:{port}{url(station, 'now-playing')}",
                                             headers={"Authorization": f"Token {token}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                data = json.loads(response.read())
            waited = time.monotonic() - started
    finally:
        redis_proxy.close()
    assert data["station"]["slug"] == station.slug and data["is_online"] is False
    assert waited < 6  # the cache gives up after its socket time-out (2 s), the database answers


def test_a_track_search_looks_the_role_up_once(token_client, station, make_playable):
    for title in ("Shir Ahava", "Shir Laila", "Shir Boker"):
        make_playable(title, "Kol Band")
    with CaptureQueriesContext(connection) as queries:
        response = token_client.get(url(station, "tracks") + "?search=shir")
    assert response.status_code == 200 and response.json()["count"] == 3
    assert {t["source_id"] for t in response.json()["results"]} == {None}  # a viewer: no sources
    assert len(_membership_queries(queries.captured_queries)) == 1


@pytest.mark.django_db(transaction=True)
def test_the_web_process_keeps_its_redis_connections_across_requests(station, process_env):
    """Django builds a cache backend per request context under ASGI; each built its own pool and
    opened a new Redis connection per request (radio/cache.py). Counted at the Redis server."""
    import urllib.request

    import redis

    from tests.asgi_server import uvicorn_server

    station.public_now_playing = True
    station.save(update_fields=["public_now_playing"])
    server = redis.Redis.from_url(process_env["REDIS_URL"])
    path = f"/api/v1/public/stations/{station.slug}/now-playing"
    with uvicorn_server(process_env) as port:
        for _ in range(5):  # warm: the pool opens what it needs
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read()
        before = server.info("stats")["total_connections_received"]
        for _ in range(60):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                assert response.status == 200
        opened = server.info("stats")["total_connections_received"] - before
    assert opened <= 3, f"{opened} Redis connections for 60 requests"
