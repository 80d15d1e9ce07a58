"""The preflight: 24 h and 1 h before a start, staff are warned of content that cannot play yet."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone

from library.models import Track
from radio.models import Notification
from scheduling.models import CalendarEvent, CalendarSource, ContentKind, Mode, ProgramSlot
from scheduling.preflight import preflight_all, preflight_station

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _slot_at(station, at, track) -> ProgramSlot:
    local = at.astimezone(ZoneInfo(station.time_zone))
    return ProgramSlot.objects.create(
        station=station, name="Morning news", weekdays=[local.weekday()],
        start_time=local.time().replace(second=0, microsecond=0),
        end_time=(local + timedelta(minutes=10)).time().replace(second=0, microsecond=0),
        first_day=local.date(), last_day=local.date(), content_kind=ContentKind.TRACK, track=track,
        mode=Mode.HARD)


def warnings(station) -> list[str]:
    return list(Notification.objects.filter(station=station, source="preflight").order_by("id")
                .values_list("message", flat=True))


def test_a_slot_whose_track_is_not_analysed_is_warned_of_once_an_hour_ahead(station, make_playable):
    track = make_playable("News", kind=Track.Kind.NEWSFLASH)
    Track.objects.filter(pk=track.pk).update(analysis=Track.Analysis.PENDING)
    _slot_at(station, timezone.now() + timedelta(minutes=50), track)
    posted = preflight_station(station)
    assert len(posted) == 1 and "In less than an hour" in posted[0] and "not analysed yet" in posted[0]
    assert preflight_station(station) == []  # once
    assert len(warnings(station)) == 1


def test_an_unresolved_event_is_warned_of_a_day_ahead_then_an_hour_ahead(station):
    source = CalendarSource.objects.create(station=station, calendar_id="c@group.calendar.google.com")
    now = timezone.now()
    event = CalendarEvent.objects.create(
        station=station, calendar=source, event_id="ev1", summary="Interview",
        starts_at=now + timedelta(hours=5), ends_at=now + timedelta(hours=6),
        status=CalendarEvent.Status.UNRESOLVED,
        problem="No playlist named “Mayor”.")
    first = preflight_station(station, now=now)
    assert len(first) == 1 and "Tomorrow" in first[0] and "Mayor" in first[0]
    assert preflight_station(station, now=now + timedelta(hours=1)) == []
    later = preflight_station(station, now=now + timedelta(hours=4, minutes=30))
    assert len(later) == 1 and "less than an hour" in later[0]
    event.refresh_from_db()
    assert event.warned == ["1h", "24h"]


def test_a_playable_programme_raises_nothing_and_old_events_are_cleared(station, make_playable):
    _slot_at(station, timezone.now() + timedelta(minutes=30), make_playable("News", kind=Track.Kind.NEWSFLASH))
    source = CalendarSource.objects.create(station=station, calendar_id="c@group.calendar.google.com")
    old = timezone.now() - timedelta(days=40)
    CalendarEvent.objects.create(station=station, calendar=source, event_id="old", starts_at=old,
                                 ends_at=old + timedelta(hours=1), status=CalendarEvent.Status.RESOLVED)
    assert preflight_all()[station.slug] == 0
    assert warnings(station) == []
    assert not CalendarEvent.objects.filter(event_id="old").exists()
