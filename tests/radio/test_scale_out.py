"""Scaling out: two web processes on one PostgreSQL and Redis are one site.

Two uvicorn processes, started as the Procfile starts the web process, share the
test database and Redis. A token issued by one and a session made elsewhere work on
both (no sticky sessions needed), both give the same answers, and a change made
through either reaches the sockets of both (the channel layer is Redis, not memory).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from django.test import Client
from websockets.sync.client import connect as ws_connect

from radio.models import Role
from tests.asgi_server import uvicorn_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_web(process_env) -> Iterator[tuple[int, int]]:
    with ExitStack() as stack:
        yield stack.enter_context(uvicorn_server(process_env)), stack.enter_context(uvicorn_server(process_env))


@pytest.fixture
def tone_track(station, tmp_path):
    from library.models import Track
    from library.services import track_import_file
    from tests.library.audio import make_tone

    path = make_tone(tmp_path / "shir.mp3", seconds=1.0)
    track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD, original_name="Shir.mp3",
                              hints={"title": "Shir Boker", "artist": "Kol Band"})
    Track.objects.filter(pk=track.pk).update(analysis=Track.Analysis.OK)
    return track


def _call(port: int, method: str, path: str, body: dict | None = None, *, token: str = "",
          cookie: str = "") -> tuple[int, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Accept": "application/json", "Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Token {token}")
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:300]


def _same_on_both(ports: tuple[int, int], path: str, **auth) -> object:
    """The answer both processes give (a cache may lag a moment behind: allowed 5 s to agree).

    Links are absolute, made from the host the request came to: each process's own
    address is read as one placeholder.
    """
    deadline = time.monotonic() + 5
    while True:
        answers = [_call(port, "GET", path, **auth) for port in ports]
        texts = [json.dumps(body).replace(f"127.0.0.1:{port}", "HOST")
                 for port, (_, body) in zip(ports, answers, strict=True)]
        if texts[0] == texts[1] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answers[0][0] == answers[1][0] == 200, answers
    assert texts[0] == texts[1], f"{path}: the two web processes disagree"
    return json.loads(texts[0])


def _open(port: int, slug: str, token: str):
    socket = ws_connect(f"ws://127.0.0.1:{port}/ws/stations/{slug}/", origin=f"http://127.0.0.1:{port}",
                        proxy=None, open_timeout=10, additional_headers={"Authorization": f"Token {token}"})
    first = json.loads(socket.recv(timeout=10))
    assert first["type"] == "playback_status", first
    return socket


def _wait_for(socket, wanted: Callable[[dict], bool], timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(socket.recv(timeout=max(0.01, deadline - time.monotonic())))
        if wanted(message):
            return message


def _queue_ids(message: dict) -> list[int] | None:
    queue = (message.get("data") or {}).get("queue") if message["type"] == "queue_update" else None
    return None if queue is None else [item["id"] for item in queue]


def test_two_web_processes_answer_alike_with_one_token_and_one_session(two_web, station, make_user,
                                                                      tone_track):
    a, b = two_web
    editor = make_user(Role.EDITOR, station, username="dana")
    status, issued = _call(a, "POST", "/api/v1/auth/token", {"username": "dana", "password": "pw-Secret-123"})
    assert status == 200, issued
    token = issued["token"]
    web = Client()
    web.force_login(editor)
    cookie = f"sessionid={web.cookies['sessionid'].value}"

    api = f"/api/v1/stations/{station.slug}"
    status, item = _call(b, "POST", f"{api}/queue", {"track": tone_track.pk}, token=token)
    assert status == 201, item
    queue = _same_on_both(two_web, f"{api}/queue", token=token)
    assert [entry["id"] for entry in queue] == [item["id"]]
    assert _same_on_both(two_web, f"{api}/queue", cookie=cookie) == queue
    now_playing = _same_on_both(two_web, f"{api}/now-playing", token=token)
    assert now_playing["queue_length"] == 1 and now_playing["playing_next"]["track"]["id"] == tone_track.pk
    tracks = _same_on_both(two_web, f"{api}/tracks?search=boker", token=token)
    assert [track["id"] for track in tracks["results"]] == [tone_track.pk]


def test_a_change_through_either_process_reaches_sockets_on_both(two_web, station, make_user, tone_track):
    from rest_framework.authtoken.models import Token

    a, b = two_web
    token = Token.objects.create(user=make_user(Role.EDITOR, station)).key
    api = f"/api/v1/stations/{station.slug}/queue"
    on_a, on_b = _open(a, station.slug, token), _open(b, station.slug, token)
    try:
        status, item = _call(a, "POST", api, {"track": tone_track.pk}, token=token)
        assert status == 201, item
        for socket in (on_b, on_a):
            _wait_for(socket, lambda m: item["id"] in (_queue_ids(m) or []))

        status, _ = _call(b, "DELETE", f"{api}/{item['id']}", token=token)
        assert status == 204
        for socket in (on_a, on_b):
            _wait_for(socket, lambda m: _queue_ids(m) == [])
    finally:
        on_a.close()
        on_b.close()
