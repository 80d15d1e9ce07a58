"""Google sign-in runs its whole OAuth flow against the local fake Google over HTTP."""

from __future__ import annotations

import urllib.request
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from radio.models import AuditEntry, Role
from tests.fakes.google import FakeGoogle

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_google():
    fake = FakeGoogle().start()
    yield fake
    fake.stop()


@pytest.fixture
def google_keys(settings, fake_google):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "client-id.apps.googleusercontent.com"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "client-secret"
    settings.GOOGLE_OAUTH_ENDPOINT = fake_google.url
    return settings


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _sign_in_with_google(client: Client) -> Client:
    """Browser steps: our begin URL → Google's consent (fake) → back to our callback."""
    begin = client.post("/auth/login/google-oauth2/")
    assert begin.status_code == 302
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(begin["Location"])
        raise AssertionError("the fake consent screen should redirect")
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302
        callback = urlparse(redirect.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


def test_button_shows_only_when_google_keys_are_configured(client, settings):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = ""
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = ""
    assert b"google-signin" not in client.get("/login/").content
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "id"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "secret"
    assert b"google-signin" in client.get("/login/").content


def test_unknown_google_user_signs_in_but_has_no_access(client, google_keys, fake_google, station):
    fake_google.sign_in_as("dana@kol.fm", name="Dana Levi")
    done = _sign_in_with_google(client)
    assert done.status_code == 302
    user = get_user_model().objects.get(email="dana@kol.fm")
    assert user.first_name == "Dana"
    assert not user.memberships.exists() and not user.is_staff
    assert AuditEntry.objects.filter(action="user.created_by_google_sign_in", actor=user).exists()
    home = client.get("/")
    assert b"no-access" in home.content
    assert client.get(f"/stations/{station.slug}/").status_code == 403
    assert client.get("/api/v1/me").json()["stations"] == []
    # The real client exchanged the code and read the profile over HTTP.
    assert fake_google.count("POST", "/o/oauth2/token") == 1
    assert fake_google.count("GET", "/oauth2/v3/userinfo") == 1


def test_google_user_with_a_role_reaches_the_station(client, google_keys, fake_google, station):
    user = get_user_model().objects.create_user(username="dana", email="dana@kol.fm")
    user.memberships.create(station=station, role=Role.EDITOR)
    fake_google.sign_in_as("dana@kol.fm")
    _sign_in_with_google(client)
    assert client.get(f"/stations/{station.slug}/").status_code == 200
    assert get_user_model().objects.filter(email="dana@kol.fm").count() == 1


def test_google_account_outside_the_allowed_domains_is_refused(client, google_keys, fake_google):
    google_keys.SOCIAL_AUTH_GOOGLE_OAUTH2_WHITELISTED_DOMAINS = ["kol.fm"]
    fake_google.sign_in_as("mallory@elsewhere.com")
    _sign_in_with_google(client)
    assert not get_user_model().objects.filter(email="mallory@elsewhere.com").exists()
    assert client.get("/api/v1/me").status_code == 401


def test_unverified_google_email_is_refused(client, google_keys, fake_google):
    fake_google.sign_in_as("dana@kol.fm", verified=False)
    _sign_in_with_google(client)
    assert not get_user_model().objects.filter(email="dana@kol.fm").exists()
