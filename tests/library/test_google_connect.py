"""A station admin connects a Google account; the refresh token is stored encrypted."""

from __future__ import annotations

import urllib.request
from urllib.parse import urlparse

import pytest
from django.test import Client

from radio.google import decrypt_token, station_credentials
from radio.models import GoogleCredential, Role

pytestmark = pytest.mark.django_db


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_admin_connects_google_and_the_token_is_encrypted(station, fake_google, make_user):
    admin = make_user(Role.ADMIN, station, is_staff=True)
    client = Client()
    client.force_login(admin)
    fake_google.sign_in_as("studio@kol.fm")
    start = client.get(f"/admin/google/connect/{station.slug}/")
    assert start.status_code == 302 and "access_type=offline" in start["Location"]
    try:
        urllib.request.build_opener(_NoRedirect).open(start["Location"])
    except urllib.error.HTTPError as redirect:
        callback = urlparse(redirect.headers["Location"])
    done = client.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 302
    credential = GoogleCredential.objects.get(station=station)
    assert credential.email == "studio@kol.fm"
    refresh = decrypt_token(credential.refresh_token_encrypted)
    assert refresh and refresh not in credential.refresh_token_encrypted
    # The stored token really works: the client refreshes it against (fake) Google.
    creds = station_credentials(station)
    import google.auth.transport.requests

    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token


def test_editor_cannot_connect_google(station, fake_google, make_user):
    client = Client()
    client.force_login(make_user(Role.EDITOR, station, is_staff=True))
    assert client.get(f"/admin/google/connect/{station.slug}/").status_code == 403
    assert not GoogleCredential.objects.exists()


def test_forged_callback_is_refused(station, fake_google, make_user):
    client = Client()
    client.force_login(make_user(Role.ADMIN, station, is_staff=True))
    response = client.get("/admin/google/callback/?code=x&state=forged", follow=True)
    assert not GoogleCredential.objects.exists()
    assert "expired or was tampered" in response.content.decode()
