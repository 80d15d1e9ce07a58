"""Weekly programme slots across daylight-saving changes (scheduling/recurrence.py), pure rules.

2026's changes, checked with zoneinfo on this machine: Asia/Jerusalem springs forward on
Friday 27 March at 02:00 (→ 03:00) and falls back on Sunday 25 October at 02:00 (→ 01:00);
America/New_York on Sunday 8 March and Sunday 1 November, both at 02:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduling.recurrence import WeeklySlot, local_to_utc, occurrences

EVERY_DAY = frozenset(range(7))


def _local(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def _window(zone: str, day: date, days: int = 1) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)
    return start, start + timedelta(days=days)


def _on(slot: WeeklySlot, day: date) -> list[tuple[str, str, float]]:
    """Occurrences starting on that local day: local start, local end, real hours."""
    zone = ZoneInfo(slot.zone)
    found = []
    for begins, ends in occurrences(slot, *_window(slot.zone, day - timedelta(days=1), 3)):
        if begins.astimezone(zone).date() == day:
            local_start, local_end = begins.astimezone(zone), ends.astimezone(zone)
            found.append((local_start.strftime("%H:%M%z"), local_end.strftime("%H:%M%z"),
                          (ends - begins).total_seconds() / 3600))
    return found


SPRING = {"Asia/Jerusalem": date(2026, 3, 27), "America/New_York": date(2026, 3, 8)}
AUTUMN = {"Asia/Jerusalem": date(2026, 10, 25), "America/New_York": date(2026, 11, 1)}


@pytest.mark.parametrize("zone", list(SPRING))
def test_a_slot_starting_in_the_skipped_hour_starts_when_the_clock_jumps(zone):
    slot = WeeklySlot(EVERY_DAY, time(2, 30), time(4, 0), zone)
    [(start, end, hours)] = _on(slot, SPRING[zone])
    assert start.startswith("03:00") and end.startswith("04:00") and hours == 1.0
    # The day before and after: as written.
    [(start, end, hours)] = _on(slot, SPRING[zone] - timedelta(days=1))
    assert (start[:5], end[:5], hours) == ("02:30", "04:00", 1.5)


@pytest.mark.parametrize("zone", list(SPRING))
def test_a_slot_wholly_inside_the_skipped_hour_does_not_occur_that_day(zone):
    slot = WeeklySlot(EVERY_DAY, time(2, 0), time(2, 45), zone)
    assert _on(slot, SPRING[zone]) == []
    assert len(_on(slot, SPRING[zone] + timedelta(days=1))) == 1


@pytest.mark.parametrize("zone", list(AUTUMN))
def test_a_slot_in_the_repeated_hour_starts_once_at_the_first(zone):
    slot = WeeklySlot(EVERY_DAY, time(1, 30), time(2, 30), zone)
    [(start, end, hours)] = _on(slot, AUTUMN[zone])
    summer, winter = {"Asia/Jerusalem": ("+0300", "+0200"), "America/New_York": ("-0400", "-0500")}[zone]
    assert start == f"01:30{summer}" and end == f"02:30{winter}"
    assert hours == 2.0  # 01:30 summer time to 02:30 winter time: the repeated hour is in it


@pytest.mark.parametrize(("zone", "day", "hours"), [
    ("Asia/Jerusalem", SPRING["Asia/Jerusalem"], 3.0),
    ("Asia/Jerusalem", AUTUMN["Asia/Jerusalem"], 5.0),
    ("America/New_York", SPRING["America/New_York"], 3.0),
    ("America/New_York", AUTUMN["America/New_York"], 5.0),
])
def test_the_end_is_the_wall_clock_end_so_the_next_programme_keeps_its_time(zone, day, hours):
    night = WeeklySlot(EVERY_DAY, time(0, 0), time(4, 0), zone)
    morning = WeeklySlot(EVERY_DAY, time(4, 0), time(6, 0), zone)
    [(_, end, length)] = _on(night, day)
    [(start, _, _)] = _on(morning, day)
    assert length == hours and end == start  # back to back, at 04:00 local


def test_weekdays_are_of_the_local_start_day_and_a_slot_can_cross_midnight():
    # Friday 22:00 → Saturday 02:00 in Jerusalem (Friday = 4), UTC dates differ from local ones.
    slot = WeeklySlot(frozenset({4}), time(22, 0), time(2, 0), "Asia/Jerusalem")
    found = list(occurrences(slot, datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 15, tzinfo=UTC)))
    assert found == [(_local("Asia/Jerusalem", 2026, 6, 5, 22).astimezone(UTC),
                      _local("Asia/Jerusalem", 2026, 6, 6, 2).astimezone(UTC)),
                     (_local("Asia/Jerusalem", 2026, 6, 12, 22).astimezone(UTC),
                      _local("Asia/Jerusalem", 2026, 6, 13, 2).astimezone(UTC))]


def test_an_occurrence_already_on_air_at_the_window_start_is_included():
    slot = WeeklySlot(EVERY_DAY, time(23, 0), time(1, 0), "UTC")
    [(begins, ends)] = occurrences(slot, datetime(2026, 6, 2, 0, 30, tzinfo=UTC),
                                   datetime(2026, 6, 2, 0, 45, tzinfo=UTC))
    assert (begins, ends) == (datetime(2026, 6, 1, 23, tzinfo=UTC), datetime(2026, 6, 2, 1, tzinfo=UTC))


def test_a_whole_day_and_the_date_range():
    slot = WeeklySlot(EVERY_DAY, time(0), time(0), "UTC", first_day=date(2026, 6, 2), last_day=date(2026, 6, 3))
    found = list(occurrences(slot, datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 10, tzinfo=UTC)))
    assert [(b.day, (e - b).total_seconds()) for b, e in found] == [(2, 86400.0), (3, 86400.0)]


def test_an_event_defined_in_utc_keeps_its_instants_across_a_change():
    # A calendar event 23:00–02:00 UTC across Jerusalem's autumn change: its instants are its
    # instants (three real hours); only how they read locally changes.
    begins, ends = datetime(2026, 10, 24, 21, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    zone = ZoneInfo("Asia/Jerusalem")
    assert begins.astimezone(zone).strftime("%H:%M%z") == "00:00+0300"
    assert ends.astimezone(zone).strftime("%H:%M%z") == "02:00+0200"
    assert (ends - begins) == timedelta(hours=3)
    # …and a slot written 00:00–02:00 local that night is the same three hours.
    slot = WeeklySlot(EVERY_DAY, time(0), time(2), "Asia/Jerusalem")
    assert _on(slot, date(2026, 10, 25)) == [("00:00+0300", "02:00+0200", 3.0)]


def test_local_to_utc_is_plain_on_ordinary_days_and_bounds_must_be_aware():
    zone = ZoneInfo("Asia/Jerusalem")
    assert local_to_utc(date(2026, 6, 1), time(12), zone) == datetime(2026, 6, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError):
        list(occurrences(WeeklySlot(EVERY_DAY, time(1), time(2), "UTC"), datetime(2026, 1, 1),
                         datetime(2026, 1, 2)))
