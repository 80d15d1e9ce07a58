"""The admin follows station roles: editors and admins get in, a demoted or removed user is out.

The staff flag follows the roles whichever way they change (the admin, the API,
a cascade, a shell), and the admin site checks the roles itself, so a stale
flag opens nothing.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from radio.models import Membership, Role, Station

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Secret-123"  # tests.fixtures.make_user


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _staff(user) -> bool:
    user.refresh_from_db()
    return user.is_staff


def _station_form(station: Station, memberships: list[tuple[Membership | None, object, str]],
                  deleted: set[int] = frozenset()) -> dict:
    """The admin's station change form, with its roles inline."""
    data = {
        "name": station.name, "slug": station.slug, "time_zone": station.time_zone,
        "language": station.language, "output": station.output, "output_device": "",
        "icecast_mount": "", "icecast_bitrate": 128, "public_now_playing": "", "queue_min_depth": 3,
        "no_repeat_hours": 3, "silence_alert_seconds": 10, "soft_start_tolerance": 10, "fade_to_fit_max": 15,
        "loudness_normalise": "on", "loudness_target": -16, "true_peak_ceiling": -1,
        "jingle_offset": 0, "commercial_offset": 0, "show_offset": 0, "crossfade": 0,
        "memberships-TOTAL_FORMS": len(memberships),
        "memberships-INITIAL_FORMS": sum(1 for m, _, _ in memberships if m is not None),
        "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000,
    }
    for i, (membership, user, role) in enumerate(memberships):
        if membership is not None:
            data[f"memberships-{i}-id"] = membership.pk
            if membership.pk in deleted:
                data[f"memberships-{i}-DELETE"] = "on"
        data[f"memberships-{i}-station"] = station.pk
        data[f"memberships-{i}-user"] = user.pk
        data[f"memberships-{i}-role"] = role
    return data


def test_an_editor_demoted_to_viewer_in_the_admin_loses_the_admin(station, make_user):
    boss = make_user(Role.ADMIN, station, username="boss")
    dana = make_user(Role.EDITOR, station, username="dana")
    assert _staff(dana)
    dana_client = _signed_in(dana)
    assert dana_client.get("/admin/").status_code == 200

    boss_memberships = Membership.objects.get(user=boss), Membership.objects.get(user=dana)
    response = _signed_in(boss).post(f"/admin/radio/station/{station.pk}/change/", _station_form(
        station, [(boss_memberships[0], boss, "admin"), (boss_memberships[1], dana, "viewer")]))
    assert response.status_code == 302, response.content.decode()[:2000]

    assert not _staff(dana)
    response = dana_client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert dana_client.get("/admin/radio/notification/").status_code == 302
    # She still reads the station on its control page.
    assert dana_client.get(f"/stations/{station.slug}/").status_code == 200


def test_removed_from_every_station_in_the_admin_loses_the_admin(station, other_station, make_user):
    boss = make_user(Role.ADMIN, station, username="boss")
    dana = make_user(Role.EDITOR, station, username="dana")
    Membership.objects.create(user=dana, station=other_station, role=Role.EDITOR)
    boss_m, dana_m = Membership.objects.get(user=boss), Membership.objects.get(user=dana, station=station)
    form = _station_form(station, [(boss_m, boss, "admin"), (dana_m, dana, "editor")], deleted={dana_m.pk})
    assert _signed_in(boss).post(f"/admin/radio/station/{station.pk}/change/", form).status_code == 302
    assert not Membership.objects.filter(user=dana, station=station).exists()
    assert _staff(dana)  # still editor of Other FM
    assert _signed_in(dana).get("/admin/").status_code == 200

    Membership.objects.get(user=dana).delete()  # the last one, from a shell
    assert not _staff(dana)
    assert _signed_in(dana).get("/admin/").status_code == 302


def test_a_promotion_grants_the_admin_and_deleting_the_station_revokes_it(station, make_user):
    dana = make_user(Role.VIEWER, station, username="dana")
    assert not _staff(dana)
    membership = Membership.objects.get(user=dana)
    membership.role = Role.ADMIN
    membership.save()
    assert _staff(dana)
    station.delete()  # the membership goes with it (cascade)
    assert not _staff(dana)


def test_a_stale_staff_flag_opens_nothing(station, make_user):
    """A flag set by a bulk update (no signal) or by hand: the admin checks the roles."""
    dana = make_user(Role.VIEWER, station, username="dana")
    get_user_model().objects.filter(pk=dana.pk).update(is_staff=True)
    client = _signed_in(dana)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not _staff(dana)  # and the check mended the flag

    get_user_model().objects.filter(pk=dana.pk).update(is_staff=True)
    login = Client().post("/admin/login/?next=/admin/", {"username": "dana", "password": PASSWORD})
    assert login.status_code == 200 and "_auth_user_id" not in login.wsgi_request.session
    assert "correct username and password for a staff account" in login.content.decode()


def test_an_editor_signs_in_to_the_admin(station, make_user):
    make_user(Role.EDITOR, station, username="dana")
    client = Client()
    login = client.post("/admin/login/?next=/admin/", {"username": "dana", "password": PASSWORD})
    assert login.status_code == 302 and login["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_superusers_are_left_alone(station, make_user):
    root = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    Membership.objects.create(user=root, station=station, role=Role.VIEWER)
    Membership.objects.get(user=root).delete()
    assert _staff(root)
    assert _signed_in(root).get("/admin/").status_code == 200
