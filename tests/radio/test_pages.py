"""Control pages and the admin respect roles, in English and in Hebrew."""

from __future__ import annotations

import pytest
from django.test import Client

from radio.models import AuditEntry, Membership, Notification, Role, Station

pytestmark = pytest.mark.django_db


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_sign_in(client, station):
    response = client.get(f"/stations/{station.slug}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_local_sign_in_with_password(client, station, make_user):
    make_user(Role.VIEWER, station, username="operator")
    response = client.post("/login/", {"username": "operator", "password": "pw-Secret-123"})
    assert response.status_code == 302
    # With a single station the home page goes straight to it.
    assert client.get("/").url == f"/stations/{station.slug}/"
    assert client.get(f"/stations/{station.slug}/").status_code == 200
    bad = Client().post("/login/", {"username": "operator", "password": "wrong"})
    assert bad.status_code == 200 and b"did not match" in bad.content


def test_viewer_sees_the_station_without_the_notice_form(station, make_user):
    page = _signed_in(make_user(Role.VIEWER, station)).get(f"/stations/{station.slug}/")
    assert page.status_code == 200
    assert b"Radio Kol" in page.content
    assert b"notice-form" not in page.content


def test_viewer_cannot_post_a_notice_even_by_hand(station, make_user):
    response = _signed_in(make_user(Role.VIEWER, station)).post(
        f"/stations/{station.slug}/notices", {"message": "x", "level": "info"})
    assert response.status_code == 403
    assert not Notification.objects.exists()


def test_editor_posts_a_notice_from_the_page(station, make_user):
    client = _signed_in(make_user(Role.EDITOR, station))
    page = client.get(f"/stations/{station.slug}/")
    assert b"notice-form" in page.content
    response = client.post(f"/stations/{station.slug}/notices",
                           {"message": "Traffic report moved to 8:05", "level": "info"},
                           follow=True)
    assert response.status_code == 200
    assert "Traffic report moved to 8:05" in response.content.decode()
    assert Notification.objects.get().station == station


def test_member_of_another_station_is_forbidden(station, other_station, make_user):
    client = _signed_in(make_user(Role.ADMIN, other_station))
    assert client.get(f"/stations/{station.slug}/").status_code == 403
    assert client.post(f"/stations/{station.slug}/notices", {"message": "x"}).status_code == 403


def test_hebrew_pages_are_right_to_left_and_translated(station, make_user):
    client = _signed_in(make_user(Role.EDITOR, station))
    client.post("/i18n/setlang/", {"language": "he", "next": "/"})
    page = client.get(f"/stations/{station.slug}/").content.decode()
    assert 'dir="rtl"' in page and 'lang="he"' in page
    assert "התראות" in page  # "Notifications"
    english = _signed_in(make_user(Role.EDITOR, station)).get(f"/stations/{station.slug}/")
    assert 'dir="ltr"' in english.content.decode()


def test_login_page_in_hebrew(client):
    page = client.get("/login/", headers={"Accept-Language": "he"}).content.decode()
    assert 'dir="rtl"' in page and "כניסה" in page


# --- admin -------------------------------------------------------------------

def test_station_admin_sees_only_their_stations_in_the_admin(station, other_station, make_user):
    admin_user = make_user(Role.ADMIN, station, is_staff=True)
    client = _signed_in(admin_user)
    listing = client.get("/admin/radio/station/")
    assert listing.status_code == 200
    assert b"Radio Kol" in listing.content and b"Other FM" not in listing.content
    assert client.get(f"/admin/radio/station/{other_station.pk}/change/").status_code in (302, 403, 404)


def test_station_admin_grants_a_role_in_the_admin_with_audit(station, make_user):
    admin_user = make_user(Role.ADMIN, station, is_staff=True)
    newcomer = make_user(username="newcomer")
    client = _signed_in(admin_user)
    existing = Membership.objects.get(user=admin_user)
    data = {
        "name": station.name, "slug": station.slug, "time_zone": station.time_zone,
        "language": "en", "output": "dummy", "output_device": "", "icecast_mount": "",
        "icecast_bitrate": 128, "public_now_playing": "", "queue_min_depth": 3, "no_repeat_hours": 3,
        "silence_alert_seconds": 10, "soft_start_tolerance": 10, "fade_to_fit_max": 15,
        "loudness_normalise": "on", "loudness_target": -16, "true_peak_ceiling": -1,
        "jingle_offset": 0, "commercial_offset": 0, "show_offset": 0, "crossfade": 0,
        "memberships-TOTAL_FORMS": 2, "memberships-INITIAL_FORMS": 1,
        "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000,
        "memberships-0-id": existing.pk, "memberships-0-station": station.pk,
        "memberships-0-user": admin_user.pk, "memberships-0-role": "admin",
        "memberships-1-station": station.pk, "memberships-1-user": newcomer.pk,
        "memberships-1-role": "editor",
    }
    response = client.post(f"/admin/radio/station/{station.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(user=newcomer).role == Role.EDITOR
    assert AuditEntry.objects.filter(action="membership.set", actor=admin_user,
                                     object_id=str(Membership.objects.get(user=newcomer).pk)).exists()


def test_editor_cannot_change_station_settings_in_the_admin(station, make_user):
    editor = make_user(Role.EDITOR, station, is_staff=True)
    client = _signed_in(editor)
    response = client.post(f"/admin/radio/station/{station.pk}/change/", {"name": "Hacked"})
    assert response.status_code == 403
    assert Station.objects.get(pk=station.pk).name == "Radio Kol"
    # …but curates the station's notices.
    assert client.get("/admin/radio/notification/add/").status_code == 200


def test_viewer_without_staff_cannot_open_the_admin(station, make_user):
    client = _signed_in(make_user(Role.VIEWER, station))
    assert client.get("/admin/").status_code == 302
