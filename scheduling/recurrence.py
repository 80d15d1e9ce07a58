"""When a weekly programme slot is on air: a pure rule, no database.

A slot is days of the week, a start and an end in the station's zone (an end at or before the
start is the next day: 22:00–02:00, and 00:00–00:00 is a whole day), and an optional date range
of the days it may start on. Occurrences come back in UTC, which is what is stored and what
the worker times.

Across daylight-saving changes, by the wall clock listeners live by:
- a local time that does not exist (the hour skipped in spring) becomes the first instant that
  does, the end of the gap: a slot 02:30–04:00 on the spring-forward day (02:00 → 03:00) runs
  03:00–04:00; a slot wholly inside the skipped hour does not occur that day;
- a local time that happens twice (the hour repeated in autumn) is its first occurrence, so a
  slot starting at 01:30 on the fall-back day starts once, at the first 01:30;
- the end is the wall-clock end, so a slot 00:00–04:00 lasts 3 hours on the spring-forward day
  and 5 on the fall-back day: the next programme still starts when its listeners expect.
Calendar events need none of this: Google gives each instance as an instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class WeeklySlot:
    weekdays: frozenset[int]  # Monday 0 … Sunday 6, of the local day the slot starts on
    start: time
    end: time
    zone: str
    first_day: date | None = None  # local dates the slot may start on, inclusive
    last_day: date | None = None


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A local date and time as a UTC instant: the first of a repeated time; for a time in a
    spring-forward gap, the end of the gap (the first local time that exists after it)."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0)  # PEP 495: fold=0 is the first of a repeat
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # In a gap: fold=0 read it with the offset before the change, fold=1 with the one after;
    # the change itself lies between the two readings.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = instant
    after = high.astimezone(zone).utcoffset()
    while high - low > timedelta(microseconds=1):  # to the microsecond: `high` is the change
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def occurrences(slot: WeeklySlot, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(start, end) in UTC of every occurrence overlapping [start, end), in order."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be aware datetimes")
    zone = ZoneInfo(slot.zone)
    # A slot that started the local day before may still be on air at `start`.
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    crosses_midnight = slot.end <= slot.start
    while day <= last:
        if (day.weekday() in slot.weekdays and (slot.first_day is None or day >= slot.first_day)
                and (slot.last_day is None or day <= slot.last_day)):
            begins = local_to_utc(day, slot.start, zone)
            ends = local_to_utc(day + timedelta(days=1) if crosses_midnight else day, slot.end, zone)
            if ends > begins and ends > start and begins < end:
                yield begins, ends
        day += timedelta(days=1)
