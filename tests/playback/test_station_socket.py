"""The station feed over the real ASGI app and the Redis channel layer.

Who may connect (close codes 4401/4403, the Origin check): test_socket_auth.py.
"""

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
HOST = (b"host", b"localhost")


@database_sync_to_async
def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _connect(slug: str, *headers: tuple[bytes, bytes]) -> tuple[WebsocketCommunicator, bool, int | None]:
    communicator = WebsocketCommunicator(application, f"/ws/stations/{slug}/",
                                         headers=[HOST, ORIGIN, *headers])
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


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


async def test_program_connects_with_an_api_token(station, make_user):
    bot = await database_sync_to_async(make_user)(Role.VIEWER, station)
    token = await database_sync_to_async(Token.objects.create)(user=bot)
    communicator, connected, _ = await _connect(
        station.slug, (b"authorization", f"Token {token.key}".encode()))
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "playback_status"
    await communicator.disconnect()
