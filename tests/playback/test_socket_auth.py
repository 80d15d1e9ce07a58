"""Who may open the station feed, through the full ASGI application and through uvicorn.

Refusals of people (not signed in, not a member) accept the handshake and close with
4401/4403, because a browser cannot read the HTTP status of a refused handshake (it
reports 1006, as for a network failure). A foreign Origin is refused at the handshake
(HTTP 403): scheme, host and port must match exactly.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect as ws_connect

from radio.models import Role
from radio.origin import ExactOriginValidator
from settings.asgi import application
from tests.asgi_server import uvicorn_server

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie_sync(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


_session_cookie = database_sync_to_async(_session_cookie_sync)


def _communicator(slug: str, *, origin: str = "http://localhost", host: str = "localhost",
                  cookie: str | None = None, app=application, **scope) -> WebsocketCommunicator:
    headers = [(b"host", host.encode()), (b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(app, f"/ws/stations/{slug}/", headers=headers)
    communicator.scope.update(scope)
    return communicator


async def _closed_with(communicator: WebsocketCommunicator) -> int:
    """Accepted, then closed before any message: the close code."""
    connected, _ = await communicator.connect(timeout=5)
    assert connected, "a refusal of a person is an accepted socket closed at once, not an HTTP 403"
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close", message
    assert message.get("reason")
    return message["code"]


# --- people: close codes ------------------------------------------------------------

async def test_anonymous_socket_is_accepted_then_closed_4401(station):
    communicator = _communicator(station.slug)
    assert await _closed_with(communicator) == 4401
    await communicator.disconnect()


async def test_bad_api_token_is_closed_4401(station):
    communicator = _communicator(station.slug)
    communicator.scope["headers"].append((b"authorization", b"Token bogus"))
    assert await _closed_with(communicator) == 4401
    await communicator.disconnect()


async def test_member_of_another_station_is_closed_4403(station, other_station, make_user):
    outsider = await database_sync_to_async(make_user)(Role.ADMIN, other_station)
    communicator = _communicator(station.slug, cookie=await _session_cookie(outsider))
    assert await _closed_with(communicator) == 4403
    await communicator.disconnect()


async def test_member_is_accepted_and_gets_the_status(station, make_user):
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    communicator = _communicator(station.slug, cookie=await _session_cookie(viewer))
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "playback_status" and message["data"]["station"] == station.slug
    await communicator.disconnect()


# --- Origin: exact scheme, host and port --------------------------------------------

async def _member_cookie(station, make_user) -> str:
    return await _session_cookie(await database_sync_to_async(make_user)(Role.VIEWER, station))


@pytest.mark.parametrize(("origin", "host", "scope"), [
    ("http://localhost:1", "localhost", {}),            # another port of the same host
    ("http://localhost:8001", "localhost:8000", {}),   # the site's host, another port
    ("https://localhost", "localhost", {}),            # https page, but the socket is not over TLS
    ("http://localhost", "localhost", {"scheme": "wss"}),  # the other way round
    ("http://evil.example", "localhost", {}),
    ("http://localhost.evil.example", "localhost", {}),
    ("http://evil.example", "evil.example", {}),       # a host that is not in ALLOWED_HOSTS
    ("null", "localhost", {}),
    ("http://localhost/page", "localhost", {}),        # not an origin
])
async def test_a_foreign_origin_is_refused_at_the_handshake(station, make_user, origin, host, scope):
    cookie = await _member_cookie(station, make_user)
    communicator = _communicator(station.slug, origin=origin, host=host, cookie=cookie, **scope)
    connected, _ = await communicator.connect(timeout=5)
    assert not connected, origin
    await communicator.disconnect()


async def test_a_handshake_without_origin_is_refused(station, make_user):
    communicator = WebsocketCommunicator(application, f"/ws/stations/{station.slug}/", headers=[
        (b"host", b"localhost"), (b"cookie", (await _member_cookie(station, make_user)).encode())])
    connected, _ = await communicator.connect(timeout=5)
    assert not connected
    await communicator.disconnect()


@pytest.mark.parametrize(("origin", "host", "scope"), [
    ("http://localhost", "localhost", {}),
    ("http://localhost:80", "localhost", {}),
    ("http://127.0.0.1:8000", "127.0.0.1:8000", {}),
    ("https://localhost", "localhost", {"scheme": "wss"}),
    ("https://localhost:8443", "localhost:8443", {"scheme": "wss"}),
])
async def test_the_sites_own_origin_is_accepted(station, make_user, origin, host, scope):
    cookie = await _member_cookie(station, make_user)
    communicator = _communicator(station.slug, origin=origin, host=host, cookie=cookie, **scope)
    connected, _ = await communicator.connect(timeout=5)
    assert connected, origin
    assert (await communicator.receive_json_from(timeout=5))["type"] == "playback_status"
    await communicator.disconnect()


@override_settings(WEBSOCKET_ALLOWED_ORIGINS=["https://studio.example:8443"],
                   CSRF_TRUSTED_ORIGINS=["https://*.radio.example"])
@pytest.mark.parametrize(("origin", "accepted"), [
    ("https://studio.example:8443", True),
    ("https://studio.example", False),
    ("http://studio.example:8443", False),
    ("https://desk.radio.example", True),
    ("http://desk.radio.example", False),
    ("https://radio.example.evil", False),
])
async def test_listed_origins_match_exactly(station, make_user, origin, accepted):
    app = ExactOriginValidator(application.application_mapping["websocket"].application)
    cookie = await _member_cookie(station, make_user)
    communicator = _communicator(station.slug, origin=origin, cookie=cookie, app=app)
    connected, _ = await communicator.connect(timeout=5)
    assert connected is accepted, origin
    await communicator.disconnect()


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), USE_X_FORWARDED_HOST=True)
async def test_behind_a_proxy_the_forwarded_scheme_and_host_count(station, make_user):
    cookie = await _member_cookie(station, make_user)
    forwarded = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-host", b"localhost")]
    good = _communicator(station.slug, origin="https://localhost", host="127.0.0.1:8000", cookie=cookie)
    good.scope["headers"] += forwarded
    assert (await good.connect(timeout=5))[0]
    await good.disconnect()
    plain = _communicator(station.slug, origin="http://localhost", host="127.0.0.1:8000", cookie=cookie)
    plain.scope["headers"] += forwarded
    assert not (await plain.connect(timeout=5))[0]
    await plain.disconnect()


def test_a_malformed_allowed_origin_stops_the_server_with_a_clear_error():
    with override_settings(WEBSOCKET_ALLOWED_ORIGINS=["studio.example"]), \
            pytest.raises(ImproperlyConfigured, match="WEBSOCKET_ALLOWED_ORIGINS: 'studio.example'"):
        ExactOriginValidator(application)


# --- the real server: what a client actually sees --------------------------------------

@pytest.fixture
def uvicorn_port(process_env):
    with uvicorn_server(process_env) as port:
        yield port


def _open(port: int, slug: str, *, origin: str | None = None, cookie: str | None = None):
    return ws_connect(f"ws://127.0.0.1:{port}/ws/stations/{slug}/",
                      origin=origin or f"http://127.0.0.1:{port}", proxy=None, open_timeout=10,
                      additional_headers={"Cookie": cookie} if cookie else None)


def test_over_uvicorn_clients_see_close_codes_and_foreign_origins_get_403(uvicorn_port, station,
                                                                         other_station, make_user):
    with _open(uvicorn_port, station.slug) as anonymous:
        with pytest.raises(ConnectionClosedError) as closed:
            anonymous.recv(timeout=10)
    assert closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason

    outsider = _session_cookie_sync(make_user(Role.ADMIN, other_station))
    with _open(uvicorn_port, station.slug, cookie=outsider) as socket:
        with pytest.raises(ConnectionClosedError) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd.code == 4403

    member = _session_cookie_sync(make_user(Role.VIEWER, station))
    with _open(uvicorn_port, station.slug, cookie=member) as socket:
        message = json.loads(socket.recv(timeout=10))
    assert message["type"] == "playback_status" and message["data"]["station"] == station.slug

    for origin in ("http://localhost:1", f"http://127.0.0.1:{uvicorn_port + 1}",
                   f"https://127.0.0.1:{uvicorn_port}", "http://127.0.0.1"):
        with pytest.raises(InvalidStatus) as refused:
            _open(uvicorn_port, station.slug, origin=origin, cookie=member)
        assert refused.value.response.status_code == 403, origin
