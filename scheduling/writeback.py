"""Write-back: the station's programme slots mirrored into a calendar as managed events.

For a calendar with `write_back` on, each enabled slot that plays something is one weekly
recurring event (RRULE by weekday, in the station's zone, until the slot's last day), marked in
`extendedProperties.private` (`onair_managed`, `onair_slot`, `onair_hash`) so that staff see one
calendar while the sync never plays it twice (calendar_sync skips managed events). Each run
inserts what is missing, patches what changed (the hash), and deletes events whose slot is gone
or disabled. Staff edits to a managed event are overwritten: the slot is the truth.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone
from googleapiclient.errors import HttpError

from radio.google import google_execute
from radio.sync import Progress
from scheduling.models import CalendarSource, ProgramSlot

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MANAGED = "onair_managed"


def _first_day(slot: ProgramSlot, today: date) -> date:
    day = max(today, slot.first_day) if slot.first_day else today
    for _ in range(7):
        if day.weekday() in slot.weekdays:
            return day
        day += timedelta(days=1)
    return day


def slot_event(slot: ProgramSlot, zone: str, *, today: date | None = None) -> dict[str, Any]:
    """The managed event's body for a slot (the hash covers everything it says)."""
    first = _first_day(slot, today or timezone.localdate())
    end_day = first + timedelta(days=1) if slot.end_time <= slot.start_time else first
    rule = "RRULE:FREQ=WEEKLY;BYDAY=" + ",".join(DAYS[d] for d in sorted(set(slot.weekdays)))
    if slot.last_day:
        rule += ";UNTIL=" + slot.last_day.strftime("%Y%m%d") + "T235959Z"
    what = {"track": f"play: track {slot.track_id}", "playlist": f"play: playlist {slot.playlist}",
            "genre": f"play: genre {slot.genre}", "show": f"play: show {slot.show_name}"}
    what = what.get(slot.content_kind, "")
    body: dict[str, Any] = {
        "summary": slot.name,
        "description": f"{what}\nmode: {slot.mode}\nfill: {slot.fill}\n\n"
                       "Managed by OnAir from a programme slot: edit the slot, not this event.",
        "start": {"dateTime": datetime.combine(first, slot.start_time).isoformat(), "timeZone": zone},
        "end": {"dateTime": datetime.combine(end_day, slot.end_time).isoformat(), "timeZone": zone},
        "recurrence": [rule],
    }
    digest = hashlib.sha1(json.dumps([body, slot.priority], sort_keys=True).encode()).hexdigest()[:16]
    body["extendedProperties"] = {"private": {MANAGED: "1", "onair_slot": str(slot.pk), "onair_hash": digest}}
    return body


def is_managed(item: dict[str, Any]) -> bool:
    return bool(((item.get("extendedProperties") or {}).get("private") or {}).get(MANAGED))


def write_back(service, source: CalendarSource, progress: Progress) -> None:
    run, station = progress.run, source.station
    events = service.events()
    managed: dict[int, dict[str, Any]] = {}
    token = None
    while True:
        page = google_execute(events.list(calendarId=source.calendar_id, privateExtendedProperty=f"{MANAGED}=1",
                                          maxResults=2500, pageToken=token), run)
        for item in page.get("items", []):
            slot_id = ((item.get("extendedProperties") or {}).get("private") or {}).get("onair_slot", "")
            if slot_id.isdigit() and item.get("status") != "cancelled":
                managed[int(slot_id)] = item
        token = page.get("nextPageToken")
        if not token:
            break
    today = timezone.localdate()
    slots = ProgramSlot.objects.filter(station=station, enabled=True).exclude(content_kind="") \
        .exclude(last_day__lt=today).select_related("playlist", "genre")  # a slot that has ended is gone
    for slot in slots:
        body = slot_event(slot, station.time_zone)
        item = managed.pop(slot.pk, None)
        if item is None:
            created = google_execute(events.insert(calendarId=source.calendar_id, body=body), run)
            ProgramSlot.objects.filter(pk=slot.pk).update(mirror_event_id=created["id"], mirror_calendar=source)
            progress.add("written")
        elif (item.get("extendedProperties") or {}).get("private", {}).get("onair_hash") != \
                body["extendedProperties"]["private"]["onair_hash"]:
            google_execute(events.update(calendarId=source.calendar_id, eventId=item["id"], body=body), run)
            progress.add("rewritten")
    for item in managed.values():  # its slot is gone or off
        try:
            google_execute(events.delete(calendarId=source.calendar_id, eventId=item["id"]), run)
        except HttpError as exc:
            if exc.resp.status not in (404, 410):
                raise
        progress.add("unwritten")
