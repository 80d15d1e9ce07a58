"""The API answers JSON 503 when the database or Redis is down, never an HTML 500.

Real outages: the ASGI server (uvicorn, as in production) reaches PostgreSQL and
Redis through TCP proxies that the test cuts or blackholes. The in-process tests
at the end use a tiny URLconf to reach the Redis branch and the limits of the
middleware with real failures too.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import IntegrityError
from django.test import Client
from django.urls import path
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from library.models import Track
from playback.models import QueueItem
from radio.models import Role, Station
from tests.asgi_server import uvicorn_server
from tests.servers import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Answer:
    status: int
    headers: Message  # case-insensitive lookups
    body: bytes

    def json(self):
        return json.loads(self.body)


def _call(method: str, url: str, token: str | None = None, data: dict | None = None,
          timeout: float = 30) -> Answer:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.headers, exc.read())


def _through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Server:
    url: str
    database: TcpProxy
    redis: TcpProxy


@pytest.fixture
def server(process_env):
    """uvicorn serving the app, with its database and Redis behind proxies the test controls."""
    database = TcpProxy(urlsplit(process_env["DATABASE_URL"]).port)
    redis_proxy = TcpProxy(urlsplit(process_env["REDIS_URL"]).port)
    env = dict(process_env, DATABASE_URL=_through(process_env["DATABASE_URL"], database),
               REDIS_URL=_through(process_env["REDIS_URL"], redis_proxy))
    with uvicorn_server(env) as port:
        yield Server(f"http://127.0.0.1:{port}", database, redis_proxy)
        # Cut first: a request hung on a blackholed connection then ends at once.
        database.close()
        redis_proxy.close()


@pytest.fixture
def editor_token(station, make_user) -> str:
    user = make_user(Role.EDITOR, station)
    return Token.objects.create(user=user).key


@pytest.fixture
def playable(station, tmp_path) -> Track:
    from library.services import track_import_file
    from tests.library.audio import make_tone

    track = track_import_file(station=station, path=make_tone(tmp_path / "t.mp3", seconds=1.0),
                              source=Track.Source.UPLOAD, original_name="Boker Tov.mp3")
    Track.objects.filter(pk=track.pk).update(analysis=Track.Analysis.OK)
    return track


def _assert_outage(answer: Answer, words: str) -> dict:
    assert answer.status == 503, answer.body[:500]
    assert answer.headers["Content-Type"].startswith("application/json")
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.json()
    assert words in body["detail"].lower()
    return body


# --- the database away ------------------------------------------------------------------------


def test_now_playing_answers_json_503_while_the_database_is_cut_and_recovers(server, station,
                                                                            editor_token):
    now_playing = f"{server.url}/api/v1/stations/{station.slug}/now-playing"
    assert _call("GET", now_playing, editor_token).status == 200

    server.database.cut()
    body = _assert_outage(_call("GET", now_playing, editor_token), "database unavailable")
    assert body["unavailable"] == "database"
    # A write too, and an anonymous caller (the public now-playing looks the station up).
    _assert_outage(_call("POST", f"{server.url}/api/v1/stations/{station.slug}/player/skip",
                         editor_token, data={}), "database unavailable")
    _assert_outage(_call("GET", f"{server.url}/api/v1/public/stations/{station.slug}/now-playing"),
                   "database unavailable")

    server.database.restore()
    assert _call("GET", now_playing, editor_token).status == 200


def test_a_silent_database_gives_503_within_the_connect_timeout_not_a_hang(server, station,
                                                                           editor_token):
    now_playing = f"{server.url}/api/v1/stations/{station.slug}/now-playing"
    server.database.blackhole()
    started = time.monotonic()
    _assert_outage(_call("GET", now_playing, editor_token, timeout=30), "database unavailable")
    # Each request opens its connection (CONN_MAX_AGE=0 here): connect_timeout (3 s) ends it.
    assert time.monotonic() - started < 10


def test_healthz_stays_json_while_the_database_is_down(server, station):
    server.database.cut()
    answer = _call("GET", f"{server.url}/healthz")
    assert answer.status == 503
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert "database" in body["down"]
    assert body["checks"]["database"]["ok"] is False


# --- Redis away --------------------------------------------------------------------------------


def test_with_redis_cut_a_queue_append_still_succeeds_because_the_database_write_happened(
        server, station, editor_token, playable):
    server.redis.cut()
    answer = _call("POST", f"{server.url}/api/v1/stations/{station.slug}/queue", editor_token,
                   data={"track": playable.pk})
    assert answer.status == 201, answer.body[:500]
    # The worker was not nudged (Redis is away) but finds the item on its next poll.
    assert QueueItem.objects.filter(station=station, track=playable).count() == 1


def test_with_redis_cut_a_sync_request_answers_json_503(server, station, editor_token):
    server.redis.cut()
    answer = _call("POST", f"{server.url}/api/v1/stations/{station.slug}/sync-runs", editor_token,
                   data={})
    assert answer.status == 503, answer.body[:500]
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["detail"]


# --- in process: the Redis branch and the middleware's limits ----------------------------------


class CacheView(APIView):
    """Needs Redis to answer at all (Django's Redis cache)."""

    permission_classes = [AllowAny]

    def get(self, request):
        from django.core.cache import cache

        return Response({"value": cache.get("outage-test")})


class DuplicateStationView(APIView):
    """A bug, not an outage: a real IntegrityError."""

    permission_classes = [AllowAny]

    def get(self, request):
        Station.objects.create(name="Twin", slug="kol")
        return Response({})


def _page_needing_redis(request):
    from django.core.cache import cache

    return cache.get("outage-test")


urlpatterns = [
    path("api/test/cache", CacheView.as_view()),
    path("api/test/duplicate-station", DuplicateStationView.as_view()),
    path("pages/cache", _page_needing_redis),
]


@pytest.fixture
def redis_cut(settings):
    proxy = TcpProxy(urlsplit(settings.REDIS_URL).port)
    proxy.cut()
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _through(settings.REDIS_URL, proxy),
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1, "retry_on_error": []},
    }}
    yield proxy
    proxy.close()


@pytest.mark.urls(__name__)
def test_an_api_view_whose_redis_is_cut_answers_json_503_redis_unavailable(redis_cut, caplog):
    response = Client().get("/api/test/cache")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"]
    assert "redis unavailable" in response.json()["detail"].lower()
    assert response.json()["unavailable"] == "redis"
    logged = [r for r in caplog.records if r.name == "radio.middleware"]
    assert len(logged) == 1 and logged[0].exc_info is not None


@pytest.mark.urls(__name__)
def test_a_page_whose_redis_is_cut_keeps_djangos_error_handling(redis_cut):
    import redis

    with pytest.raises(redis.ConnectionError):  # the test client re-raises what a 500 hides
        Client().get("/pages/cache")


@pytest.mark.urls(__name__)
def test_a_database_bug_is_not_dressed_up_as_an_outage(station):
    with pytest.raises(IntegrityError):
        Client().get("/api/test/duplicate-station")
