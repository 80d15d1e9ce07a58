"""Bad input to the radio API answers 400 naming the field, never a 500 (PostgreSQL refuses NUL)."""

from __future__ import annotations

import pytest

from radio.models import Membership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.ADMIN, station, username="boss"))
    api_client.raise_request_exception = False  # a 500 must show as a 500, not as the test's exception
    return api_client


def test_a_station_slug_with_a_nul_is_a_400_naming_the_slug(api_client, make_user, station):
    api_client.force_authenticate(make_user())  # any signed-in user, member of nothing
    api_client.raise_request_exception = False
    for method in ("get", "patch"):
        response = getattr(api_client, method)("/api/v1/stations/%00")
        assert response.status_code == 400, response.content
        assert "station_slug" in response.json()
    response = api_client.get("/api/v1/stations/k%00l")
    assert response.status_code == 400 and "station_slug" in response.json()


def test_a_station_slug_that_is_merely_unknown_stays_a_404(admin_client):
    assert admin_client.get("/api/v1/stations/nope").status_code == 404


def test_a_nul_in_a_membership_username_is_a_400_naming_the_field(admin_client, station, make_user):
    members = f"/api/v1/stations/{station.slug}/members"
    response = admin_client.post(members, {"username": "ed\x00", "role": "editor"}, format="json")
    assert response.status_code == 400, response.content
    assert "username" in response.json()
    make_user(username="ed")
    response = admin_client.post(members, {"username": "ed", "role": "editor"}, format="json")
    assert response.status_code == 201
    membership = Membership.objects.get(user__username="ed")
    response = admin_client.patch(f"{members}/{membership.pk}", {"username": "\x00"}, format="json")
    assert response.status_code == 400 and "username" in response.json()


def test_a_username_of_the_wrong_type_is_a_400(admin_client, station):
    members = f"/api/v1/stations/{station.slug}/members"
    for bad in ({"a": 1}, ["x"], 12, None):
        response = admin_client.post(members, {"username": bad, "role": "viewer"}, format="json")
        assert response.status_code == 400 and "username" in response.json(), bad



def test_bodies_are_json_a_form_is_refused_with_415(admin_client, station):
    # In a form an empty field means "not given": `time_zone=` used to be accepted as no change.
    response = admin_client.patch(f"/api/v1/stations/{station.slug}", "time_zone=",
                                  content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "detail" in response.json()
    response = admin_client.patch(f"/api/v1/stations/{station.slug}", {"time_zone": ""}, format="json")
    assert response.status_code == 400 and "time_zone" in response.json()


def test_the_schema_documents_the_errors_each_operation_can_answer(admin_client):
    schema = admin_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    append = paths["/api/v1/stations/{station_slug}/queue"]["post"]
    assert {"201", "400", "401", "403", "404", "415"} <= append["responses"].keys()
    assert list(append["requestBody"]["content"]) == ["application/json"]
    assert append["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Detail"}
    upload = paths["/api/v1/stations/{station_slug}/tracks"]["post"]
    assert list(upload["requestBody"]["content"]) == ["multipart/form-data"]
    public = paths["/api/v1/public/stations/{station_slug}/now-playing"]["get"]
    assert set(public["responses"]) == {"200", "404"}  # no sign-in, no roles, no input to refuse
    me = paths["/api/v1/me"]["get"]
    assert {"200", "401", "403"} <= me["responses"].keys() and "404" not in me["responses"]
