"""Sign-in throttling (django-axes) on /login/, /admin/login/ and POST /api/v1/auth/token.

Defaults: 5 failures lock the account and, separately, the client address for
15 minutes; the right password is refused while locked; a success resets.
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from radio.models import Role
from tests.asgi_server import uvicorn_server

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Secret-123"  # tests.fixtures.make_user
ATTACKER, OFFICE, STUDIO = "203.0.113.5", "198.51.100.7", "192.0.2.44"


def _page_login(client: Client, url: str, username: str, password: str, ip: str):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _token(client: Client, username: str, password: str, ip: str):
    return client.post("/api/v1/auth/token", {"username": username, "password": password},
                       REMOTE_ADDR=ip)


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_thirty_wrong_passwords_lock_the_sign_in_page(url, station, make_user, caplog):
    make_user(Role.EDITOR, station, username="operator")
    client = Client()
    statuses = [_page_login(client, url, "operator", f"guess-{n}", ATTACKER).status_code
                for n in range(30)]
    assert statuses[:4] == [200] * 4  # the form again, "did not match"
    assert statuses[4:] == [429] * 26

    locked = _page_login(client, url, "operator", PASSWORD, ATTACKER)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert 'id="locked-out"' in page and "Too many failed sign-in attempts" in page
    assert "blocked for 15 minutes" in page
    assert 14 * 60 < int(locked["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in client.session  # the right password did not sign in
    assert any("sign-in locked: username='operator'" in r.getMessage() for r in caplog.records)

    # The account is locked from anywhere, the address for any account...
    assert _page_login(Client(), url, "operator", PASSWORD, OFFICE).status_code == 429
    make_user(Role.EDITOR, station, username="presenter")
    assert _page_login(Client(), url, "presenter", PASSWORD, ATTACKER).status_code == 429
    # ...but another account from another address signs in.
    other = Client()
    assert _page_login(other, url, "presenter", PASSWORD, STUDIO).status_code == 302
    assert "_auth_user_id" in other.session


def test_the_lock_page_is_translated(station, make_user):
    make_user(Role.VIEWER, station, username="operator")
    client = Client(HTTP_ACCEPT_LANGUAGE="he")
    for n in range(5):
        response = _page_login(client, "/login/", "operator", f"guess-{n}", ATTACKER)
    assert response.status_code == 429
    assert 'lang="he"' in response.content.decode() and 'dir="rtl"' in response.content.decode()


def test_the_lock_ends_after_the_cool_off(station, make_user):
    make_user(Role.VIEWER, station, username="operator")
    for n in range(5):
        _page_login(Client(), "/login/", "operator", f"guess-{n}", ATTACKER)
    assert _page_login(Client(), "/login/", "operator", PASSWORD, ATTACKER).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _page_login(Client(), "/login/", "operator", PASSWORD, ATTACKER).status_code == 302


def test_a_success_resets_the_failures(station, make_user):
    make_user(Role.VIEWER, station, username="operator")
    for n in range(4):
        assert _page_login(Client(), "/login/", "operator", f"guess-{n}", OFFICE).status_code == 200
    assert _page_login(Client(), "/login/", "operator", PASSWORD, OFFICE).status_code == 302
    for n in range(4):  # four more are four, not nine
        assert _page_login(Client(), "/login/", "operator", f"again-{n}", OFFICE).status_code == 200
    assert _page_login(Client(), "/login/", "operator", PASSWORD, OFFICE).status_code == 302


def test_the_token_endpoint_answers_429_json_when_locked(station, make_user):
    make_user(Role.EDITOR, station, username="bot")
    client = Client()
    answers = [_token(client, "bot", f"guess-{n}", ATTACKER) for n in range(30)]
    assert [a.status_code for a in answers[:4]] == [400] * 4
    assert {a.status_code for a in answers[4:]} == {429}
    locked = _token(client, "bot", PASSWORD, ATTACKER)
    assert locked.status_code == 429 and locked["Content-Type"] == "application/json"
    assert "Too many failed sign-in attempts" in locked.json()["detail"]
    assert 14 * 60 < int(locked["Retry-After"]) <= 15 * 60
    assert _token(Client(), "bot", PASSWORD, OFFICE).status_code == 429  # the account, from anywhere

    make_user(Role.EDITOR, station, username="scheduler")
    assert _token(Client(), "scheduler", PASSWORD, STUDIO).status_code == 200


def test_a_token_for_the_right_password_resets_the_failures(station, make_user):
    make_user(Role.EDITOR, station, username="bot")
    for n in range(4):
        assert _token(Client(), "bot", f"guess-{n}", OFFICE).status_code == 400
    assert _token(Client(), "bot", PASSWORD, OFFICE).status_code == 200
    assert not AccessAttempt.objects.exists()
    for n in range(4):
        assert _token(Client(), "bot", f"again-{n}", OFFICE).status_code == 400
    assert _token(Client(), "bot", PASSWORD, OFFICE).status_code == 200


# --- The real web process: ASGI (uvicorn) behind a reverse proxy ---------------------

def _post(opener, url: str, data: dict, forwarded_for: str, csrf: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for}
    if csrf:
        headers["X-CSRFToken"] = csrf
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(),
                                     headers=headers, method="POST")
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.django_db(transaction=True)
def test_under_uvicorn_the_client_address_comes_from_the_proxy(process_env, station, make_user):
    """uvicorn --proxy-headers (Procfile) takes X-Forwarded-For from the proxy (127.0.0.1 here)."""
    make_user(Role.EDITOR, station, username="bot")
    make_user(Role.EDITOR, station, username="scheduler")
    make_user(Role.VIEWER, station, username="operator")
    with uvicorn_server(process_env) as port:
        base = f"http://127.0.0.1:{port}"
        plain = urllib.request.build_opener(_NoRedirect)
        answers = [_post(plain, f"{base}/api/v1/auth/token", {"username": "bot", "password": f"g{n}"},
                         ATTACKER) for n in range(6)]
        assert [a[0] for a in answers] == [400, 400, 400, 400, 429, 429]
        status, headers, body = _post(plain, f"{base}/api/v1/auth/token",
                                      {"username": "bot", "password": PASSWORD}, ATTACKER)
        assert status == 429 and "Too many failed" in json.loads(body)["detail"]
        assert int(headers["Retry-After"]) > 800
        # The proxy's own address (127.0.0.1) is not what was locked: other clients sign in.
        status, _, body = _post(plain, f"{base}/api/v1/auth/token",
                                {"username": "scheduler", "password": PASSWORD}, OFFICE)
        assert status == 200 and json.loads(body)["token"]
        assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}

        # The sign-in page from the locked address: the lock page, even with the right password.
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPCookieProcessor(jar))
        browser.open(f"{base}/login/", timeout=30).read()
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        status, _, body = _post(browser, f"{base}/login/", {"username": "operator", "password": PASSWORD,
                                                           "csrfmiddlewaretoken": csrf}, ATTACKER)
        assert status == 429 and b'id="locked-out"' in body
        status, headers, _ = _post(browser, f"{base}/login/", {"username": "operator", "password": PASSWORD,
                                                              "csrfmiddlewaretoken": csrf}, STUDIO)
        assert status == 302 and headers["Location"] == "/"


def test_one_warning_per_lockout_says_who_was_locked(station, make_user, caplog):
    make_user(Role.VIEWER, station, username="operator")
    with caplog.at_level(logging.INFO, logger="radio.auth"):
        for n in range(30):
            _page_login(Client(), "/login/", "operator", f"guess-{n}", ATTACKER)
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "radio.auth" and r.levelno == logging.WARNING]
    assert warnings == [f"sign-in locked: username='operator' ip={ATTACKER} path=/login/ "
                        "after 5 failures, for 0:15:00"]
    refused = [r for r in caplog.records if r.name == "radio.auth" and r.levelno == logging.INFO]
    assert len(refused) == 25
