"""The station feed over the real ASGI app and the Redis channel layer."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework.authtoken.models import Token

from radio.models import Role
from radio.notify import MessageType, station_notify_async
from radio.services import notification_post
from settings.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


@database_sync_to_async
def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _connect(slug: str, *headers: tuple[bytes, bytes]) -> tuple[WebsocketCommunicator, bool, int | None]:
    communicator = WebsocketCommunicator(application, f"/ws/stations/{slug}/",
                                         headers=[ORIGIN, *headers])
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def test_anonymous_socket_is_refused(station):
    communicator, connected, code = await _connect(station.slug)
    assert not connected
    assert code == 4401
    await communicator.disconnect()


async def test_member_gets_a_snapshot_then_group_messages(station, make_user):
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    communicator, connected, _ = await _connect(station.slug, (b"cookie", await _session_cookie(viewer)))
    assert connected
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "playback_status"
    assert snapshot["data"]["station"] == "kol"
    assert snapshot["data"]["worker"]["up"] is False

    assert await station_notify_async(station.slug, MessageType.QUEUE_UPDATE, {"items": [1, 2]})
    message = await communicator.receive_json_from(timeout=5)
    assert message == {"type": "queue_update", "data": {"items": [1, 2]}}
    await communicator.disconnect()


async def test_notice_posted_by_a_service_reaches_the_socket(station, make_user):
    editor = await database_sync_to_async(make_user)(Role.EDITOR, station)
    communicator, connected, _ = await _connect(station.slug, (b"cookie", await _session_cookie(editor)))
    assert connected
    await communicator.receive_json_from(timeout=5)  # snapshot
    await database_sync_to_async(notification_post)(station=station, message="Newsflash at :30",
                                           actor=editor)
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "notification"
    assert message["data"]["message"] == "Newsflash at :30"
    assert message["data"]["created_by"] == editor.username
    await communicator.disconnect()


async def test_member_of_another_station_is_refused(station, other_station, make_user):
    outsider = await database_sync_to_async(make_user)(Role.ADMIN, other_station)
    communicator, connected, code = await _connect(station.slug,
                                                   (b"cookie", await _session_cookie(outsider)))
    assert not connected
    assert code == 4403
    await communicator.disconnect()


async def test_foreign_origin_is_refused_even_with_a_session(station, make_user):
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    communicator = WebsocketCommunicator(
        application, f"/ws/stations/{station.slug}/",
        headers=[(b"origin", b"https://evil.example"), (b"cookie", await _session_cookie(viewer))],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected
    await communicator.disconnect()


async def test_program_connects_with_an_api_token(station, make_user):
    bot = await database_sync_to_async(make_user)(Role.VIEWER, station)
    token = await database_sync_to_async(Token.objects.create)(user=bot)
    communicator, connected, _ = await _connect(
        station.slug, (b"authorization", f"Token {token.key}".encode()))
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "playback_status"
    await communicator.disconnect()
    communicator, connected, code = await _connect(station.slug, (b"authorization", b"Token bogus"))
    assert not connected and code == 4401
    await communicator.disconnect()
