"""The station page's programme card: what starts next, in the station's zone, and what cannot play."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from radio.models import Role, Station
from scheduling.models import CalendarEvent, CalendarSource, ContentKind, Mode, ProgramSlot
from tests.playback.conftest import make_playable, tone_file  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

JERUSALEM = ZoneInfo("Asia/Jerusalem")
EMPTY = '<li class="empty">Nothing scheduled in the next 24 hours: the queue and auto-DJ play.</li>'


def _viewer(make_user, station) -> Client:
    client = Client()
    client.force_login(make_user(Role.VIEWER, station))
    return client


def _daily_slot(station, track, *, name: str, in_hours: int, mode: str = Mode.HARD) -> ProgramSlot:
    """A slot every day, starting `in_hours` from now (on the minute, Jerusalem time), for an hour."""
    begins = (timezone.localtime(timezone.now(), JERUSALEM) + timedelta(hours=in_hours)).replace(second=0,
                                                                                                microsecond=0)
    return ProgramSlot.objects.create(
        station=station, name=name, weekdays=list(range(7)), start_time=begins.time(),
        end_time=(begins + timedelta(hours=1)).time(), content_kind=ContentKind.TRACK, track=track, mode=mode)


def _unresolved_event(station, *, summary: str, problem: str, in_hours: int) -> CalendarEvent:
    calendar = CalendarSource.objects.create(station=station, calendar_id="studio@group.calendar.google.com")
    starts = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=in_hours)
    return CalendarEvent.objects.create(station=station, calendar=calendar, event_id="evt1", summary=summary,
                                        starts_at=starts, ends_at=starts + timedelta(minutes=30),
                                        status=CalendarEvent.Status.UNRESOLVED, problem=problem)


def _card(page: str) -> str:
    return re.search(r'<section class="card" id="programme-card".*?</section>', page, re.S).group(0)


def test_programme_shows_the_next_slot_in_station_time_and_flags_what_cannot_play(
        station, make_user, make_playable):  # noqa: F811
    news = make_playable("Morning news", kind="newsflash")
    slot = _daily_slot(station, news, name="Morning news", in_hours=2)
    event = _unresolved_event(station, summary="Interview with the mayor",
                              problem="No track or playlist named 'mayor interview'.", in_hours=3)

    card = _card(_viewer(make_user, station).get(f"/stations/{station.slug}/").content.decode())

    assert "Morning news" in card and EMPTY not in card
    # The slot's wall-clock times in Jerusalem, the instant in UTC for machines, read left to right.
    starts = timezone.localtime(timezone.now(), JERUSALEM).replace(
        hour=slot.start_time.hour, minute=slot.start_time.minute, second=0, microsecond=0)
    if starts < timezone.now():
        starts += timedelta(days=1)
    utc = starts.astimezone(UTC)
    assert (f'<span dir="ltr"><time datetime="{utc.isoformat()}">{slot.start_time:%H:%M}</time>–'
            f'<time datetime="{(utc + timedelta(hours=1)).isoformat()}">{slot.end_time:%H:%M}</time></span>'
            in card)
    assert "On the second" in card and "Programme slot" in card
    # The event that cannot play is listed with its problem, not placed in the programme.
    problems = card.split('id="programme-problems"')[1]
    assert "Cannot play" in problems and "hidden" not in problems.split(">")[0]
    assert event.summary in problems and "No track or playlist named &#x27;mayor interview&#x27;." in problems
    local_event = timezone.localtime(event.starts_at, JERUSALEM)
    assert f">{local_event:%H:%M}</time>" in problems


def test_soft_entries_are_back_timed_and_a_calendar_conflict_is_noted(station, make_user,
                                                                      make_playable):  # noqa: F811
    track = make_playable("Jingle", kind="jingle")
    _daily_slot(station, track, name="Soft hour", in_hours=4, mode=Mode.SOFT)
    calendar = CalendarSource.objects.create(station=station, calendar_id="studio@group.calendar.google.com")
    slot_start = datetime.combine(timezone.localdate(timezone.now(), JERUSALEM),
                                  ProgramSlot.objects.get().start_time, tzinfo=JERUSALEM)
    if slot_start < timezone.now():
        slot_start += timedelta(days=1)
    # A hard calendar event over the slot's first half: the slot is shortened, and says so.
    CalendarEvent.objects.create(station=station, calendar=calendar, event_id="live", summary="Live concert",
                                 starts_at=slot_start, ends_at=slot_start + timedelta(minutes=30),
                                 status=CalendarEvent.Status.RESOLVED, mode=Mode.HARD, priority=5,
                                 content_kind=ContentKind.TRACK, track=track)

    card = _card(_viewer(make_user, station).get(f"/stations/{station.slug}/").content.decode())

    concert, soft = card.split('class="programme-entry"')[1:3]
    assert "Live concert" in concert and "On the second" in concert and "Calendar" in concert
    assert "Soft hour" in soft and "Back-timed" in soft
    assert 'class="p-notes"' in soft and "Live concert" in soft.split('class="p-notes"')[1]


def test_without_a_programme_the_card_says_the_queue_and_auto_dj_play(station, make_user):
    card = _card(_viewer(make_user, station).get(f"/stations/{station.slug}/").content.decode())
    assert EMPTY in card
    assert 'id="programme-problems" class="programme-problems" hidden' in card


def test_todays_all_day_note_is_listed(station, make_user):
    calendar = CalendarSource.objects.create(station=station, calendar_id="studio@group.calendar.google.com")
    midnight = datetime.combine(timezone.localdate(timezone.now(), JERUSALEM), datetime.min.time(),
                                tzinfo=JERUSALEM)
    CalendarEvent.objects.create(station=station, calendar=calendar, event_id="holiday", summary="Election day",
                                 starts_at=midnight, ends_at=midnight + timedelta(days=1), all_day=True,
                                 status=CalendarEvent.Status.NOTE)
    card = _card(_viewer(make_user, station).get(f"/stations/{station.slug}/").content.decode())
    today = card.split('id="programme-today"')[1].split("</div>")[0]
    assert "hidden" not in today.split(">")[0] and "Election day" in today


def test_a_programme_that_cannot_be_read_leaves_the_page_working(station, make_user, caplog,
                                                                 make_playable):  # noqa: F811
    _daily_slot(station, make_playable("News", kind="newsflash"), name="News", in_hours=1)
    Station.objects.filter(pk=station.pk).update(time_zone="Nowhere/Atlantis")  # bypasses the validator

    with caplog.at_level(logging.WARNING, logger="radio.pages"):
        response = _viewer(make_user, station).get(f"/stations/{station.slug}/")

    assert response.status_code == 200
    assert EMPTY in _card(response.content.decode())
    assert "station=kol programme card not built" in caplog.text


def test_hebrew_station_page_with_a_programme_is_right_to_left(station, make_user,
                                                               make_playable):  # noqa: F811
    slot = _daily_slot(station, make_playable("News", kind="newsflash"), name="חדשות", in_hours=2)
    client = _viewer(make_user, station)
    client.post("/i18n/setlang/", {"language": "he", "next": "/"})
    page = client.get(f"/stations/{station.slug}/").content.decode()
    assert 'dir="rtl"' in page and 'lang="he"' in page
    card = _card(page)
    assert "חדשות" in card and f'">{slot.start_time:%H:%M}</time>–<time' in card
    assert '<span dir="ltr"><time' in card  # the time range keeps its order inside right-to-left text
