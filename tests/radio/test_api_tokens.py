"""API tokens expire, rotate when a new one is issued, and die with a password change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from radio.models import Role

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Secret-123"  # tests.fixtures.make_user


def _issue(username: str, password: str = PASSWORD) -> str:
    response = APIClient().post("/api/v1/auth/token", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _me(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/me")


def test_a_token_expires_after_the_configured_days(station, make_user, settings):
    settings.API_TOKEN_TTL_DAYS = 30
    make_user(Role.EDITOR, station, username="bot")
    token = _issue("bot")
    assert _me(token).status_code == 200
    Token.objects.filter(key=token).update(created=timezone.now() - timedelta(days=29, hours=23))
    assert _me(token).status_code == 200
    Token.objects.filter(key=token).update(created=timezone.now() - timedelta(days=30, minutes=1))
    expired = _me(token)
    assert expired.status_code == 401
    assert expired.json()["detail"].startswith("Token expired")
    assert expired["WWW-Authenticate"] == "Token"
    # Signing in again gives a fresh one.
    assert _me(_issue("bot")).status_code == 200


def test_posting_again_rotates_the_token(station, make_user):
    make_user(Role.EDITOR, station, username="bot")
    first = _issue("bot")
    second = _issue("bot")
    assert first != second
    assert _me(first).status_code == 401
    assert _me(second).status_code == 200
    assert Token.objects.count() == 1


@pytest.mark.parametrize("how", ["set_password", "admin_form", "password_change_page"])
def test_a_password_change_revokes_the_token(how, station, make_user):
    user = make_user(Role.EDITOR, station, username="bot")
    token = _issue("bot")
    if how == "set_password":
        user.set_password("a-New-pw-4567")
        user.save()
    elif how == "admin_form":
        root = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
        client = Client()
        client.force_login(root)
        response = client.post(f"/admin/auth/user/{user.pk}/password/",
                               {"password1": "a-New-pw-4567", "password2": "a-New-pw-4567",
                                "usable_password": "true"})
        assert response.status_code == 302, response.content.decode()[:1500]
    else:
        client = Client()
        client.force_login(user)
        response = client.post("/admin/password_change/", {
            "old_password": PASSWORD, "new_password1": "a-New-pw-4567", "new_password2": "a-New-pw-4567"})
        assert response.status_code == 302, response.content.decode()[:1500]
    assert _me(token).status_code == 401
    assert not Token.objects.filter(user=user).exists()
    assert _me(_issue("bot", "a-New-pw-4567")).status_code == 200


def test_saving_the_user_without_a_new_password_keeps_the_token(station, make_user):
    user = make_user(Role.EDITOR, station, username="bot")
    token = _issue("bot")
    user.email = "bot@example.org"
    user.save()
    user.refresh_from_db()
    user.save(update_fields=["last_login"])
    assert _me(token).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_an_expired_token_cannot_open_the_station_feed(station, make_user):
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from settings.asgi import application

    bot = await database_sync_to_async(make_user)(Role.VIEWER, station)
    token = await database_sync_to_async(Token.objects.create)(user=bot)
    await database_sync_to_async(Token.objects.filter(pk=token.pk).update)(
        created=timezone.now() - timedelta(days=31))
    communicator = WebsocketCommunicator(application, f"/ws/stations/{station.slug}/", headers=[
        (b"host", b"localhost"), (b"origin", b"http://localhost"),
        (b"authorization", f"Token {token.key}".encode())])
    connected, _ = await communicator.connect(timeout=5)
    if connected:  # refused by closing after the handshake, or at it: never a snapshot
        assert (await communicator.receive_output(timeout=5))["type"] == "websocket.close"
    await communicator.disconnect()
