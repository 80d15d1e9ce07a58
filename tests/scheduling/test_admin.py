"""The schedule in the admin: scoped to the user's stations, slots edited with day checkboxes, sync now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.test import Client

from library.models import Playlist
from radio.models import AuditEntry, Role
from scheduling.models import CalendarEvent, CalendarSource, ContentKind, ProgramSlot

pytestmark = pytest.mark.django_db

SLOTS = "/admin/scheduling/programslot/"
CALENDARS = "/admin/scheduling/calendarsource/"
EVENTS = "/admin/scheduling/calendarevent/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_slot(station, name: str, **fields) -> ProgramSlot:
    fields.setdefault("weekdays", [0, 1, 2, 3, 4])
    return ProgramSlot.objects.create(station=station, name=name, start_time=time(8), end_time=time(9),
                                      content_kind=ContentKind.SHOW, show_name=name, **fields)


def slot_form(station, **changes) -> dict:
    """The POST a browser sends from the slot's add form (checked days as repeated `weekdays`)."""
    data = {"station": station.pk, "name": "Morning", "enabled": "on", "weekdays": ["0", "2"],
            "start_time": "08:00", "end_time": "09:00", "first_day": "", "last_day": "",
            "content_kind": "show", "track": "", "playlist": "", "genre": "", "show_name": "Boker Tov",
            "mode": "soft", "fill": "rotation", "priority": "0"}
    data.update(changes)
    return data


@pytest.fixture
def editor(station, make_user):
    return make_user(Role.EDITOR, station, is_staff=True)


@pytest.fixture
def calendar(station) -> CalendarSource:
    return CalendarSource.objects.create(station=station, calendar_id="kol@group.calendar.google.com",
                                         name="Kol programme", last_error="Calendar said 404")


@pytest.fixture
def event(calendar) -> CalendarEvent:
    # 06:00 UTC is 09:00 in Jerusalem (summer time): the list shows the station's time.
    return CalendarEvent.objects.create(station=calendar.station, calendar=calendar, event_id="e1",
                                        summary="Jazz hour", starts_at=datetime(2026, 5, 4, 6, tzinfo=UTC),
                                        ends_at=datetime(2026, 5, 4, 7, tzinfo=UTC),
                                        status=CalendarEvent.Status.UNRESOLVED,
                                        content_kind=ContentKind.PLAYLIST, ref="Jazz",
                                        problem="No playlist named “Jazz”.")


@pytest.mark.parametrize("who", ["superuser", "editor"])
def test_schedule_admin_pages_load(who, station, make_user, editor, calendar, event):
    user = make_user(is_staff=True, is_superuser=True) if who == "superuser" else editor
    slot = make_slot(station, "Morning")
    client = signed_in(user)
    for address in (SLOTS, f"{SLOTS}add/", f"{SLOTS}{slot.pk}/change/", CALENDARS, f"{CALENDARS}add/",
                    f"{CALENDARS}{calendar.pk}/change/", EVENTS, f"{EVENTS}{event.pk}/change/",
                    f"{EVENTS}?status=unresolved&all_day__exact=0", f"{EVENTS}?starts_at__year=2026"):
        assert client.get(address).status_code == 200, address
    # The mirror is read only: events come from Google Calendar.
    assert client.get(f"{EVENTS}add/").status_code == 403


def test_event_list_shows_the_station_time_problem_and_content(editor, event):
    listing = signed_in(editor).get(EVENTS).content.decode()
    assert "Jazz hour" in listing and "No playlist named “Jazz”." in listing
    assert "9 a.m." in listing or "09:00" in listing  # 06:00 UTC in Jerusalem
    assert "Playlist: Jazz" in listing


def test_editor_sees_only_their_stations_rows(editor, station, other_station, calendar):
    make_slot(station, "Kol Morning")
    theirs = make_slot(other_station, "Other Morning")
    their_calendar = CalendarSource.objects.create(
        station=other_station, calendar_id="other@group.calendar.google.com", name="Other programme")
    client = signed_in(editor)
    slots = client.get(SLOTS).content.decode()
    assert "Kol Morning" in slots and "Other Morning" not in slots
    calendars = client.get(CALENDARS).content.decode()
    assert "Kol programme" in calendars and "Other programme" not in calendars
    assert client.get(f"{SLOTS}{theirs.pk}/change/").status_code in (302, 403, 404)
    assert client.get(f"{CALENDARS}{their_calendar.pk}/change/").status_code in (302, 403, 404)
    response = client.post(f"{SLOTS}{theirs.pk}/change/", slot_form(other_station, name="Hijacked"))
    assert response.status_code in (302, 403, 404)
    theirs.refresh_from_db()
    assert theirs.name == "Other Morning"
    # Nor can a slot be added to their station.
    assert client.post(f"{SLOTS}add/", slot_form(other_station, name="Sneaky")).status_code == 200
    assert not ProgramSlot.objects.filter(name="Sneaky").exists()


def test_editor_adds_a_slot_with_day_checkboxes_and_it_is_journaled(editor, station):
    client = signed_in(editor)
    form = client.get(f"{SLOTS}add/").content.decode()
    assert 'type="checkbox" name="weekdays" value="6"' in form and "Sunday" in form
    response = client.post(f"{SLOTS}add/", slot_form(station))
    assert response.status_code == 302, response.content.decode()[:3000]
    slot = ProgramSlot.objects.get(station=station)
    assert (slot.weekdays, slot.show_name, slot.start_time) == ([0, 2], "Boker Tov", time(8))
    assert AuditEntry.objects.filter(action="programslot.add", station=station, actor=editor).exists()
    page = client.get(f"{SLOTS}{slot.pk}/change/").content.decode()
    checked = set(re.findall(r'name="weekdays" value="(\d)" id="id_weekdays_\d" checked', page))
    assert checked == {"0", "2"}
    assert "Monday, Wednesday" in client.get(SLOTS).content.decode()


@pytest.mark.parametrize(("changes", "message"), [
    ({"weekdays": []}, "Pick at least one day"),
    ({"first_day": "2026-05-02", "last_day": "2026-05-01"}, "The last day is before the first."),
    ({"show_name": ""}, "Say which show the slot plays."),
])
def test_the_slot_form_shows_the_models_errors(editor, station, changes, message):
    response = signed_in(editor).post(f"{SLOTS}add/", slot_form(station, **changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ProgramSlot.objects.exists()


def test_another_stations_playlist_cannot_be_chosen(editor, station, other_station, make_user):
    theirs = Playlist.objects.create(station=other_station, name="Theirs", slug="theirs")
    mine = Playlist.objects.create(station=station, name="Mine", slug="mine")
    client = signed_in(editor)
    form = client.get(f"{SLOTS}add/").content.decode()
    assert "Mine" in form and "Theirs" not in form
    refused = client.post(f"{SLOTS}add/", slot_form(station, content_kind="playlist", playlist=theirs.pk))
    assert refused.status_code == 200 and not ProgramSlot.objects.exists()
    # A superuser may pick any playlist in the form; the model still keeps stations apart.
    root = signed_in(make_user(is_staff=True, is_superuser=True))
    refused = root.post(f"{SLOTS}add/", slot_form(station, content_kind="playlist", playlist=theirs.pk))
    assert refused.status_code == 200 and "It belongs to another station." in refused.content.decode()
    assert client.post(f"{SLOTS}add/", slot_form(station, content_kind="playlist",
                                                 playlist=mine.pk)).status_code == 302


def test_sync_now_queues_one_sync_per_station_for_editors(editor, station, other_station, calendar, make_user,
                                                          django_capture_on_commit_callbacks):
    second = CalendarSource.objects.create(station=station, calendar_id="news@group.calendar.google.com")
    client = signed_in(editor)
    listing = client.get(CALENDARS).content.decode()
    assert "Sync now" in listing and "Calendar said 404" in listing
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(CALENDARS, {"action": "sync_now", "_selected_action": [calendar.pk, second.pk]},
                               follow=True)
    assert "Sync queued for Radio Kol." in response.content.decode()
    assert len(callbacks) == 1

    # A viewer here, editor elsewhere: the admin lists nothing of this station to act on.
    elsewhere = make_user(Role.EDITOR, other_station, is_staff=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signed_in(elsewhere).post(CALENDARS, {"action": "sync_now", "_selected_action": [calendar.pk]})
    assert callbacks == []


def test_only_enabled_calendars_sync(editor, calendar, django_capture_on_commit_callbacks):
    CalendarSource.objects.filter(pk=calendar.pk).update(enabled=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = signed_in(editor).post(CALENDARS, {"action": "sync_now", "_selected_action": [calendar.pk]},
                                          follow=True)
    assert "Only enabled calendars sync" in response.content.decode()
    assert callbacks == []


def test_events_are_listed_in_the_date_hierarchy_and_searched(editor, calendar, event):
    CalendarEvent.objects.create(station=calendar.station, calendar=calendar, event_id="e2", summary="News",
                                 starts_at=event.starts_at + timedelta(days=40),
                                 ends_at=event.starts_at + timedelta(days=40, hours=1),
                                 status=CalendarEvent.Status.RESOLVED)
    client = signed_in(editor)
    may = client.get(f"{EVENTS}?starts_at__year=2026&starts_at__month=5").content.decode()
    assert "Jazz hour" in may and ">News<" not in may
    found = client.get(f"{EVENTS}?q=news").content.decode()
    assert ">News<" in found or "News</" in found
    assert "Jazz hour" not in found
