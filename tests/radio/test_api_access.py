"""Roles hold in the API: viewer reads, editor writes, admin manages, strangers get nothing."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from radio.models import AuditEntry, Membership, Notification, Role

pytestmark = pytest.mark.django_db


def test_anonymous_requests_are_refused(api_client, station):
    assert api_client.get("/api/v1/stations").status_code == 401
    response = api_client.get(f"/api/v1/stations/{station.slug}/notifications")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "detail" in response.json()
    assert api_client.post(f"/api/v1/stations/{station.slug}/notifications",
                           {"message": "hi"}).status_code == 401
    assert not Notification.objects.exists()


def test_station_list_shows_only_the_users_stations(api_client, station, other_station, make_user):
    viewer = make_user(Role.VIEWER, station)
    api_client.force_authenticate(viewer)
    response = api_client.get("/api/v1/stations")
    assert response.status_code == 200
    assert [s["slug"] for s in response.json()["results"]] == ["kol"]
    assert response.json()["results"][0]["role"] == "viewer"


def test_viewer_reads_but_cannot_write(api_client, station, make_user):
    viewer = make_user(Role.VIEWER, station)
    api_client.force_authenticate(viewer)
    assert api_client.get(f"/api/v1/stations/{station.slug}").status_code == 200
    assert api_client.get(f"/api/v1/stations/{station.slug}/notifications").status_code == 200
    response = api_client.post(f"/api/v1/stations/{station.slug}/notifications",
                               {"message": "Studio 2 mic is live"}, format="json")
    assert response.status_code == 403
    assert "editor" in response.json()["detail"]
    assert api_client.patch(f"/api/v1/stations/{station.slug}", {"name": "X"},
                            format="json").status_code == 403
    assert not Notification.objects.exists()


def test_editor_posts_a_notice_that_is_stored_and_journaled(api_client, station, make_user):
    editor = make_user(Role.EDITOR, station)
    api_client.force_authenticate(editor)
    response = api_client.post(f"/api/v1/stations/{station.slug}/notifications",
                               {"message": "Studio 2 mic is live", "level": "warning"},
                               format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["created_by"] == editor.username
    notification = Notification.objects.get()
    assert (notification.station, notification.level) == (station, "warning")
    entry = AuditEntry.objects.get(action="notification.post")
    assert entry.actor == editor and entry.after["message"] == "Studio 2 mic is live"
    # Editors do not manage the station or its members.
    assert api_client.patch(f"/api/v1/stations/{station.slug}", {"name": "X"},
                            format="json").status_code == 403
    assert api_client.get(f"/api/v1/stations/{station.slug}/members").status_code == 403


def test_member_of_one_station_can_do_nothing_on_another(api_client, station, other_station,
                                                         make_user):
    admin_of_a = make_user(Role.ADMIN, station)
    api_client.force_authenticate(admin_of_a)
    base = f"/api/v1/stations/{other_station.slug}"
    assert api_client.get(base).status_code == 403
    assert api_client.get(f"{base}/notifications").status_code == 403
    assert api_client.post(f"{base}/notifications", {"message": "x"}).status_code == 403
    assert api_client.get(f"{base}/members").status_code == 403
    assert api_client.patch(base, {"name": "Hijacked"}, format="json").status_code == 403
    other_station.refresh_from_db()
    assert other_station.name == "Other FM"


def test_unknown_station_is_404(api_client, make_user, station):
    api_client.force_authenticate(make_user(Role.ADMIN, station))
    assert api_client.get("/api/v1/stations/nope/notifications").status_code == 404


def test_admin_changes_settings_and_roles_with_audit(api_client, station, make_user):
    admin = make_user(Role.ADMIN, station)
    newcomer = make_user(username="dj-dana")
    api_client.force_authenticate(admin)
    response = api_client.patch(f"/api/v1/stations/{station.slug}",
                                {"name": "Radio Kol 101.5"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Radio Kol 101.5"
    response = api_client.post(f"/api/v1/stations/{station.slug}/members",
                               {"username": "dj-dana", "role": "editor"}, format="json")
    assert response.status_code == 201, response.json()
    assert Membership.objects.get(user=newcomer).role == "editor"
    newcomer.refresh_from_db()
    assert newcomer.is_staff  # editors curate in the admin
    actions = set(AuditEntry.objects.filter(station=station).values_list("action", flat=True))
    assert {"station.update", "membership.set"} <= actions
    audit = api_client.get(f"/api/v1/stations/{station.slug}/audit").json()["results"]
    assert audit[0]["actor"] == admin.username


def test_invalid_station_settings_get_400_with_field_errors(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.ADMIN, station))
    response = api_client.patch(f"/api/v1/stations/{station.slug}",
                                {"time_zone": "Mars/Olympus"}, format="json")
    assert response.status_code == 400
    assert "time_zone" in response.json()
    response = api_client.patch(f"/api/v1/stations/{station.slug}",
                                {"output": "icecast", "icecast_mount": ""}, format="json")
    assert response.status_code == 400
    assert "icecast_mount" in response.json()
    station.refresh_from_db()
    assert station.time_zone == "Asia/Jerusalem" and station.output == "dummy"


def test_token_authentication_obtains_and_uses_a_token(api_client, station, make_user):
    make_user(Role.VIEWER, station, username="bot")
    response = api_client.post("/api/v1/auth/token",
                               {"username": "bot", "password": "pw-Secret-123"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert Token.objects.get(key=token).user.username == "bot"
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get(f"/api/v1/stations/{station.slug}/notifications").status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert api_client.get(f"/api/v1/stations/{station.slug}/notifications").status_code == 401


def test_wrong_password_gets_no_token(api_client, make_user):
    make_user(username="bot")
    response = api_client.post("/api/v1/auth/token",
                               {"username": "bot", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert not Token.objects.exists()


def test_openapi_schema_is_served_to_signed_in_users(api_client, station, make_user):
    assert api_client.get("/api/schema").status_code == 401
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    response = api_client.get("/api/schema")
    assert response.status_code == 200
    assert b"/api/v1/stations/{station_slug}/notifications" in response.content
