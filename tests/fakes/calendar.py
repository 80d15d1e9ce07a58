"""Calendar v3 for FakeGoogle: calendars, events, recurring series and incremental sync, in memory.

Tests arrange state with the methods below (`fake.calendar.add_event(...)`); the real
google-api-python-client reads it with events.list and writes back with insert, patch,
update and delete. Where real Calendar is awkward the fake is too, after Google's
reference (the calendar v3 discovery document's own texts) or, where marked, after
behaviour users report:

- Full sync: `nextSyncToken` comes on the last page only, earlier pages carry
  `nextPageToken`. The sync token stands for the moment the FIRST page was served,
  so a change made while a client pages is in the next incremental sync, never lost.
  Page and sync tokens are opaque strings. A list with `orderBy` gets no sync token
  (reported: googleapis/google-api-ruby-client#312).
- Incremental sync (`syncToken`): every event changed since, cancelled ones whatever
  `showDeleted` says. With showDeleted false a cancelled event is minimal: kind, etag,
  id and status, plus recurringEventId and originalStartTime for a cancelled
  instance (the Event.status reference guarantees no more). syncToken with iCalUID,
  orderBy, privateExtendedProperty, q, sharedExtendedProperty, timeMin, timeMax or
  updatedMin is a 400; an expired (`expire_sync_tokens`) or unknown token is 410
  fullSyncRequired.
- Recurring series expand (singleEvents=true) with dateutil in the series' own time
  zone: an 08:00 show stays 08:00 across DST and its UTC instant moves. EXDATEs drop
  instances; exceptions (moved or cancelled instances) are events of their own, id
  `<series>_<original start, UTC basic format>` (`_<YYYYMMDD>` all-day), with
  recurringEventId and originalStartTime. A series yields at most MAX_INSTANCES (730)
  instances counted from its start, bounded or not: Google does not document a
  limit, users report that one (support.google.com/calendar/thread/51073472, "Daily
  recurring event has stopped recurring"). So a series changed since a sync token
  comes back, with singleEvents=true, as all its instances up to that cap. A deleted
  series comes back as the series id, cancelled, not as cancelled instances.
- Without singleEvents, cancelled instances of a live series are listed even when
  showDeleted is false; with singleEvents and showDeleted, deleted series are not
  (both said in the showDeleted reference).
- dateTime values are written in the response zone (the `timeZone` parameter, else
  the calendar's), while `timeZone` stays the event's own: the offset and the zone
  name need not agree. All-day events are placed in the calendar's zone for
  timeMin/timeMax, which bound the end (exclusive) and the start (exclusive).
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

from tests.fakes.google import Request, Response

if TYPE_CHECKING:
    from tests.fakes.google import FakeGoogle

MAX_INSTANCES = 730
MAX_RESULTS, DEFAULT_RESULTS = 2500, 250
# Parameters events.list refuses next to a syncToken (the syncToken reference).
NOT_WITH_SYNC_TOKEN = ("iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
                       "timeMin", "timeMax", "updatedMin")
# Event fields Calendar computes: what a client sends for them is ignored.
READ_ONLY = {"kind", "etag", "id", "htmlLink", "created", "updated", "creator", "organizer", "iCalUID",
             "sequence", "recurringEventId", "originalStartTime"}
_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")  # base32hex, as the Event.id reference demands

When = datetime | date  # an aware datetime, or a date for all-day events


class CalendarError(Exception):
    """Answered in Calendar's JSON error shape (no `status` member, unlike newer APIs)."""

    def __init__(self, status: int, message: str, reason: str, *, domain: str = "global",
                 location: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.domain, self.location = status, reason, domain, location

    def response(self) -> Response:
        detail = {"domain": self.domain, "reason": self.reason, "message": str(self)}
        if self.location:
            detail.update(locationType="parameter", location=self.location)
        return Response(self.status, {"error": {"errors": [detail], "code": self.status,
                                                "message": str(self)}})


def not_found() -> CalendarError:
    return CalendarError(404, "Not Found", "notFound")


def rfc3339_ms(ms: int) -> str:
    """Google's timestamp form: 2026-11-30T10:00:00.123Z."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _timestamp(text: str) -> datetime:
    """timeMin/timeMax/updatedMin: RFC3339 with a mandatory offset, else Google's bare 400."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise CalendarError(400, "Bad Request", "badRequest")
    return value


def _zone(name: str, location: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:
        raise CalendarError(400, f"Invalid time zone definition for {location}.", "invalid",
                            location=location) from exc


def _instant(value: When, zone: ZoneInfo) -> datetime:
    """An all-day date as the midnight that starts it in `zone`."""
    return value if isinstance(value, datetime) else datetime.combine(value, clock_time(), zone)


def _when_json(value: When, zone_name: str | None, out: ZoneInfo) -> dict[str, str]:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    text = value.astimezone(out).replace(microsecond=0).isoformat()
    body = {"dateTime": text[:-6] + "Z" if text.endswith("+00:00") else text}
    if zone_name:
        body["timeZone"] = zone_name
    return body


def _parse_when(value: Any, which: str) -> tuple[When, str | None]:
    if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
        raise CalendarError(400, f"Missing {which} time.", "required")
    zone_name = value.get("timeZone") or None
    zone = _zone(zone_name, f"{which} time") if zone_name else None
    try:
        if value.get("date"):
            return date.fromisoformat(value["date"]), None
        moment = datetime.fromisoformat(value["dateTime"])
    except (TypeError, ValueError) as exc:
        raise CalendarError(400, f"Invalid {which} time.", "invalid") from exc
    if moment.tzinfo is None:
        if zone is None:
            raise CalendarError(400, f"Missing time zone definition for {which} time.", "required")
        moment = moment.replace(tzinfo=zone)
    return moment, zone_name


def _times_json(start: When, end: When, zone_name: str, all_day: bool) -> dict[str, Any]:
    """Test-side start/end (naive datetimes are wall time in `zone_name`) in Google's shape."""
    if all_day or not isinstance(start, datetime):
        def day(value: When) -> str:
            return (value.date() if isinstance(value, datetime) else value).isoformat()
        return {"start": {"date": day(start)}, "end": {"date": day(end)}}
    zone = ZoneInfo(zone_name)

    def one(value: When) -> dict[str, str]:
        assert isinstance(value, datetime), "a timed event needs datetimes for start and end"
        aware = value if value.tzinfo else value.replace(tzinfo=zone)
        return {"dateTime": aware.astimezone(zone).isoformat(), "timeZone": zone_name}
    return {"start": one(start), "end": one(end)}


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Patch semantics: objects merge recursively, anything else replaces, null removes."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


# --- recurrence ---------------------------------------------------------------------------


def _rule_text(value: str, zone: ZoneInfo, all_day: bool) -> str:
    """dateutil wants UNTIL in UTC when DTSTART is aware and floating when it is naive."""
    def fix(match: re.Match) -> str:
        text = match.group(1)
        if all_day:
            return "UNTIL=" + text[:8]
        if text.endswith("Z"):
            return "UNTIL=" + text
        local = (datetime.strptime(text, "%Y%m%d").replace(hour=23, minute=59, second=59) if len(text) == 8
                 else datetime.strptime(text, "%Y%m%dT%H%M%S"))
        return "UNTIL=" + local.replace(tzinfo=zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return re.sub(r"UNTIL=([0-9TZ]+)", fix, value)


def _rule_dates(params: str, value: str, zone: ZoneInfo, first: datetime, all_day: bool) -> list[datetime]:
    """The moments of an RDATE/EXDATE line, comparable with the rule's own."""
    tzid = re.search(r"TZID=([^;:]+)", params)
    local = ZoneInfo(tzid.group(1)) if tzid else zone
    moments = []
    for text in value.split(","):
        text = text.strip()
        if len(text) == 8:
            day = datetime.strptime(text, "%Y%m%d")
            moments.append(day if all_day else datetime.combine(day.date(), first.timetz()))
        elif text.endswith("Z"):
            moment = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            moments.append(moment.replace(tzinfo=None) if all_day else moment)
        else:
            moment = datetime.strptime(text, "%Y%m%dT%H%M%S")
            moments.append(moment if all_day else moment.replace(tzinfo=local))
    return moments


def expand(lines: list[str], start: When, zone: ZoneInfo) -> list[When]:
    """Original starts of a series (at most MAX_INSTANCES), as wall time in `zone`."""
    all_day = not isinstance(start, datetime)
    first = datetime.combine(start, clock_time()) if all_day else start.astimezone(zone)
    rules = rruleset()
    try:
        for line in lines:
            head, _, value = line.partition(":")
            kind = head.split(";")[0].upper()
            if kind in ("RRULE", "EXRULE"):
                rule = rrulestr(_rule_text(value, zone, all_day), dtstart=first)
                (rules.rrule if kind == "RRULE" else rules.exrule)(rule)
            elif kind in ("RDATE", "EXDATE"):
                for moment in _rule_dates(head, value, zone, first, all_day):
                    (rules.rdate if kind == "RDATE" else rules.exdate)(moment)
            else:
                raise ValueError(line)
        found = list(itertools.islice(rules, MAX_INSTANCES))
    except (ValueError, TypeError, KeyError) as exc:  # KeyError: an unknown TZID
        raise CalendarError(400, "Invalid recurrence rule.", "invalid") from exc
    return [moment.date() for moment in found] if all_day else found


def instance_id(series_id: str, original: When) -> str:
    if isinstance(original, datetime):
        return f"{series_id}_{original.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{series_id}_{original:%Y%m%d}"


# --- state ----------------------------------------------------------------------------------


@dataclass
class _Event:
    """One stored event: a single event, a series, or an exception of a series."""

    id: str
    resource: dict[str, Any]  # the fields a client writes, start/end as last written
    created_ms: int
    start: When = date.min
    end: When = date.min
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # where a series expands
    changed: int = 0  # change number of the last change: sync tokens compare with it
    updated_ms: int = 0
    sequence: int = 0
    original: When | None = None  # for an exception: the start of the instance it replaces
    occurrences: list[When] | None = None  # a series' expansion, cached until it changes

    @property
    def series_id(self) -> str | None:
        return self.resource.get("recurringEventId")

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"


@dataclass
class _Calendar:
    id: str
    summary: str
    time_zone: str
    description: str = ""
    updated_ms: int = 0
    events: dict[str, _Event] = field(default_factory=dict)  # in creation order

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass
class _Listing:
    """One events.list run across its pages: items frozen when the first page was served."""

    calendar_id: str
    items: list[dict[str, Any]]
    seq: int  # the change number the first page saw: what the final sync token stands for
    sync: bool  # whether the last page gets a nextSyncToken


@dataclass
class _Query:
    single: bool
    show_deleted: bool
    out: ZoneInfo
    since: int | None = None  # an incremental sync: changes after this change number
    time_min: datetime | None = None
    time_max: datetime | None = None
    updated_min: datetime | None = None
    tests: list[Callable[[_Event], bool]] = field(default_factory=list)


class FakeCalendar:
    user_email = "station@example.com"  # the account the fake's clients act as

    def __init__(self, fake: FakeGoogle) -> None:
        self.fake = fake
        self.lock = threading.RLock()
        self.calendars: dict[str, _Calendar] = {}
        self._seq = 0
        self._last_ms = 0
        self._sync_tokens: dict[str, tuple[str, int]] = {}  # token -> (calendar id, change number)
        self._pages: dict[str, tuple[_Listing, int]] = {}  # token -> (listing, offset)
        self._add_routes(fake)

    # --- test-side arrangement -----------------------------------------------------------------

    def add_calendar(self, cal_id: str, time_zone: str = "Asia/Jerusalem", summary: str | None = None,
                     description: str = "") -> str:
        ZoneInfo(time_zone)  # a typo fails here, not in a later request
        with self.lock:
            self.calendars[cal_id] = _Calendar(cal_id, summary or cal_id, time_zone, description,
                                               self._now_ms())
        return cal_id

    def add_event(self, cal_id: str, summary: str, start: When, end: When, *, time_zone: str | None = None,
                  all_day: bool = False, description: str = "", private: dict[str, str] | None = None,
                  recurrence: list[str] | None = None, event_id: str | None = None,
                  location: str = "") -> str:
        """An event (a series when `recurrence` is given); returns its id.

        Naive datetimes are wall time in `time_zone`, which defaults to the calendar's
        and is written into start/end.timeZone as Google's own UI does.
        """
        with self.lock:
            cal = self.calendars[cal_id]
            resource: dict[str, Any] = {"status": "confirmed", "summary": summary,
                                        **_times_json(start, end, time_zone or cal.time_zone, all_day)}
            if description:
                resource["description"] = description
            if location:
                resource["location"] = location
            if private:
                resource["extendedProperties"] = {"private": dict(private)}
            if recurrence:
                resource["recurrence"] = list(recurrence)
            return self._create(cal, resource, event_id or _new_id()).id

    def update_event(self, cal_id: str, event_id: str, **changes: Any) -> None:
        """Change an event as someone would in Calendar's UI.

        Keywords: summary, description, location, status, start, end, time_zone, all_day,
        private (replaces extendedProperties.private), recurrence.
        """
        with self.lock:
            cal = self.calendars[cal_id]
            ev = cal.events[event_id]
            resource = copy.deepcopy(ev.resource)
            resource.update({key: changes.pop(key) for key in
                             ("summary", "description", "location", "status", "recurrence") if key in changes})
            if "private" in changes:
                resource.setdefault("extendedProperties", {})["private"] = dict(changes.pop("private") or {})
            if changes.keys() & {"start", "end", "time_zone", "all_day"}:
                zone_name = changes.pop("time_zone", None) or ev.resource["start"].get("timeZone") \
                    or cal.time_zone
                all_day = changes.pop("all_day", not isinstance(ev.start, datetime))
                resource.update(_times_json(changes.pop("start", ev.start), changes.pop("end", ev.end),
                                            zone_name, all_day))
            if changes:
                raise TypeError(f"update_event() does not know {sorted(changes)}")
            self._change(cal, ev, resource, replace=True)

    def cancel_event(self, cal_id: str, event_id: str) -> None:
        """Delete an event (a series with its exceptions): it stays as a cancelled tombstone."""
        with self.lock:
            cal = self.calendars[cal_id]
            self._cancel(cal, cal.events[event_id])

    def move_instance(self, cal_id: str, series_id: str, original_start: When, new_start: When,
                      new_end: When) -> str:
        """Move one instance of a series (an exception); returns the instance id."""
        with self.lock:
            cal = self.calendars[cal_id]
            ev = self._exception(cal, series_id, original_start)
            zone_name = ev.resource["start"].get("timeZone") or cal.time_zone
            self._change(cal, ev, _times_json(new_start, new_end, zone_name,
                                              not isinstance(ev.start, datetime)))
            return ev.id

    def cancel_instance(self, cal_id: str, series_id: str, original_start: When) -> str:
        """Delete one instance of a series (a cancelled exception); returns the instance id."""
        with self.lock:
            cal = self.calendars[cal_id]
            ev = self._exception(cal, series_id, original_start)
            self._change(cal, ev, {"status": "cancelled"})
            return ev.id

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far answers 410 fullSyncRequired from now on."""
        with self.lock:
            self._sync_tokens.clear()

    def event(self, cal_id: str, event_id: str) -> dict[str, Any]:
        """An event as events.get would answer it (for assertions on what was written back)."""
        with self.lock:
            cal = self.calendars[cal_id]
            ev, original = self._lookup(cal, event_id)
            return self._render(cal, ev, cal.zone, original)

    # --- state changes ---------------------------------------------------------------------

    def _now_ms(self) -> int:
        """Milliseconds, strictly increasing: every change gets its own `updated`."""
        self._last_ms = max(self._last_ms + 1, int(time.time() * 1000))
        return self._last_ms

    def _touch(self, cal: _Calendar, ev: _Event) -> None:
        self._seq += 1
        ev.changed, ev.updated_ms = self._seq, self._now_ms()
        ev.occurrences = None
        cal.updated_ms = ev.updated_ms

    def _parse(self, cal: _Calendar, ev: _Event) -> None:
        """Read start/end (and check the recurrence) after every write; CalendarError if bad."""
        start, zone_name = _parse_when(ev.resource.get("start"), "start")
        end, _ = _parse_when(ev.resource.get("end"), "end")
        if isinstance(start, datetime) != isinstance(end, datetime):
            raise CalendarError(400, "Start and end times must either both be date or both be dateTime.",
                                "invalid")
        if end < start or (end == start and not isinstance(start, datetime)):
            raise CalendarError(400, "The specified time range is empty.", "timeRangeEmpty",
                                domain="calendar")
        if ev.resource.get("recurrence") and isinstance(start, datetime) and not zone_name:
            raise CalendarError(400, "Missing time zone definition for start time.", "required")
        ev.start, ev.end = start, end
        ev.zone = ZoneInfo(zone_name) if zone_name else cal.zone
        if ev.resource.get("recurrence"):
            expand(ev.resource["recurrence"], start, ev.zone)

    def _create(self, cal: _Calendar, resource: dict[str, Any], event_id: str,
                original: When | None = None) -> _Event:
        if event_id in cal.events:
            raise CalendarError(409, "The requested identifier already exists.", "duplicate")
        resource.setdefault("status", "confirmed")
        ev = _Event(event_id, resource, self._now_ms(), original=original)
        self._parse(cal, ev)
        cal.events[event_id] = ev
        self._touch(cal, ev)
        return ev

    def _change(self, cal: _Calendar, ev: _Event, patch: dict[str, Any], replace: bool = False) -> None:
        before = ev.resource
        ev.resource = {k: v for k, v in before.items() if k == "recurringEventId"} if replace \
            else copy.deepcopy(before)
        _merge(ev.resource, {k: v for k, v in patch.items() if k not in READ_ONLY})
        ev.resource.setdefault("status", "confirmed")
        try:
            self._parse(cal, ev)
        except CalendarError:
            ev.resource = before
            self._parse(cal, ev)
            raise
        if any(before.get(key) != ev.resource.get(key) for key in ("start", "end", "recurrence")):
            ev.sequence += 1
        self._touch(cal, ev)

    def _cancel(self, cal: _Calendar, ev: _Event) -> None:
        self._change(cal, ev, {"status": "cancelled"})
        if ev.resource.get("recurrence"):
            for other in list(cal.events.values()):
                if other.series_id == ev.id and not other.cancelled:
                    self._change(cal, other, {"status": "cancelled"})

    def _occurrences(self, ev: _Event) -> list[When]:
        if ev.occurrences is None:
            ev.occurrences = expand(ev.resource["recurrence"], ev.start, ev.zone)
        return ev.occurrences

    def _lookup(self, cal: _Calendar, event_id: str) -> tuple[_Event, When | None]:
        """A stored event, or (series, original start) for a not-yet-modified instance id."""
        if event_id in cal.events:
            return cal.events[event_id], None
        series_id, _, _ = event_id.rpartition("_")
        series = cal.events.get(series_id)
        if series is not None and series.resource.get("recurrence"):
            for original in self._occurrences(series):
                if instance_id(series_id, original) == event_id:
                    return series, original
        raise not_found()

    def _exception(self, cal: _Calendar, series_id: str, original: When) -> _Event:
        """The exception event for one instance of a series, made from the instance if new."""
        series = cal.events[series_id]
        if isinstance(original, datetime) and original.tzinfo is None:
            original = original.replace(tzinfo=series.zone)
        try:
            ev, found = self._lookup(cal, instance_id(series_id, original))
        except CalendarError:
            raise ValueError(f"{original} is not an instance of the series {series_id}") from None
        if found is None:
            return ev
        resource = {k: copy.deepcopy(v) for k, v in series.resource.items() if k != "recurrence"}
        resource.update(recurringEventId=series_id, status="confirmed", **self._instance_times(series, found))
        ev = self._create(cal, resource, instance_id(series_id, found), original=found)
        ev.sequence = series.sequence
        return ev

    @staticmethod
    def _instance_span(series: _Event, original: When) -> tuple[When, When]:
        """Start and end of one instance: the series' length after the original start."""
        if isinstance(original, datetime):
            return original, (original.astimezone(UTC) + (series.end - series.start)).astimezone(series.zone)
        return original, original + (series.end - series.start)

    def _instance_times(self, series: _Event, original: When) -> dict[str, Any]:
        start, end = self._instance_span(series, original)
        return {"start": _when_json(start, series.resource["start"].get("timeZone"), series.zone),
                "end": _when_json(end, series.resource["end"].get("timeZone"), series.zone)}

    # --- reading: rendering and selection --------------------------------------------------

    def _render(self, cal: _Calendar, ev: _Event, out: ZoneInfo, original: When | None = None,
                minimal: bool = False) -> dict[str, Any]:
        """An event as Calendar answers it; `original` makes it that instance of the series `ev`."""
        series_id = ev.id if original is not None else ev.series_id
        original = original if original is not None else ev.original
        body: dict[str, Any] = {
            "kind": "calendar#event", "etag": f'"{ev.updated_ms * 1000 + ev.changed % 1000}"',
            "id": instance_id(ev.id, original) if series_id == ev.id else ev.id,
            "status": ev.resource["status"]}
        zone_name = ev.resource["start"].get("timeZone")
        series = cal.events.get(series_id) if series_id else None
        instance = {"recurringEventId": series_id, "originalStartTime": _when_json(
            original, series.resource["start"].get("timeZone"), out)} if series and original else {}
        if minimal:
            return {**body, **instance}
        eid = base64.urlsafe_b64encode(f"{body['id']} {cal.id}".encode()).decode().rstrip("=")
        body.update(htmlLink=f"https://www.google.com/calendar/event?eid={eid}",
                    created=rfc3339_ms(ev.created_ms), updated=rfc3339_ms(ev.updated_ms))
        resource = copy.deepcopy(ev.resource)
        for key in ("status", "start", "end", "recurringEventId"):
            resource.pop(key, None)
        if original is not None and series_id == ev.id:  # a generated instance of the series
            resource.pop("recurrence", None)
            start, end = self._instance_span(ev, original)
        else:
            start, end = ev.start, ev.end
        body.update(resource)
        body.update(creator={"email": self.user_email},
                    organizer={"email": cal.id, "displayName": cal.summary, "self": True},
                    start=_when_json(start, zone_name, out),
                    end=_when_json(end, ev.resource["end"].get("timeZone"), out), **instance,
                    iCalUID=f"{series_id or ev.id}@google.com", sequence=ev.sequence,
                    reminders=body.get("reminders", {"useDefault": True}), eventType="default")
        return body

    def _span(self, cal: _Calendar, ev: _Event, original: When | None) -> tuple[datetime, datetime]:
        if original is None:
            return _instant(ev.start, cal.zone), _instant(ev.end, cal.zone)
        start = _instant(original, cal.zone)
        return start, start + (_instant(ev.end, cal.zone) - _instant(ev.start, cal.zone))

    def _instances(self, cal: _Calendar, series: _Event) -> Iterator[tuple[_Event, When | None]]:
        """A series' instances in time order: generated ones, or the exceptions replacing them."""
        for original in self._occurrences(series):
            exception = cal.events.get(instance_id(series.id, original))
            yield (exception, None) if exception is not None else (series, original)

    def _candidates(self, cal: _Calendar, q: _Query) -> Iterator[tuple[_Event, When | None, bool]]:
        """(event, instance original, minimal) for every item the query may return."""
        expanded: set[str] = set()
        for ev in list(cal.events.values()):
            is_series = bool(ev.resource.get("recurrence"))
            if q.since is not None:  # incremental: what changed, cancelled or not
                if ev.changed <= q.since or ev.series_id in expanded:
                    continue
                if q.single and is_series and not ev.cancelled:
                    expanded.add(ev.id)
                    for item, original in self._instances(cal, ev):
                        yield item, original, item.cancelled and not q.show_deleted
                else:
                    yield ev, None, ev.cancelled and not q.show_deleted
            elif q.single and is_series:
                if not ev.cancelled:
                    for item, original in self._instances(cal, ev):
                        if not item.cancelled or q.show_deleted:
                            yield item, original, False
            elif q.single and ev.series_id:
                continue  # listed with its series
            elif is_series and not ev.cancelled:
                if any(self._overlaps(q, *self._span(cal, ev, original)) for original in self._occurrences(ev)):
                    yield ev, None, False
            elif not ev.cancelled or q.show_deleted or self._live_series(cal, ev):
                yield ev, None, False  # a cancelled instance of a live series is listed regardless

    @staticmethod
    def _live_series(cal: _Calendar, ev: _Event) -> bool:
        series = cal.events.get(ev.series_id or "")
        return series is not None and not series.cancelled

    @staticmethod
    def _overlaps(q: _Query, start: datetime, end: datetime) -> bool:
        return (q.time_min is None or end > q.time_min) and (q.time_max is None or start < q.time_max)

    def _select(self, cal: _Calendar, q: _Query, order: str | None) -> list[dict[str, Any]]:
        found = []
        for ev, original, minimal in self._candidates(cal, q):
            if not all(test(ev) for test in q.tests):
                continue
            if q.updated_min is not None and ev.updated_ms < q.updated_min.timestamp() * 1000:
                continue
            start, end = self._span(cal, ev, original)
            is_master = original is None and ev.resource.get("recurrence")  # checked in _candidates
            if q.since is None and not is_master and not self._overlaps(q, start, end):
                continue
            key = (start, ev.id) if order == "startTime" else (ev.updated_ms, ev.id)
            found.append((key, self._render(cal, ev, q.out, original, minimal)))
        if order:
            found.sort(key=lambda pair: pair[0])
        return [item for _, item in found]

    # --- HTTP ----------------------------------------------------------------------------------

    def _add_routes(self, fake: FakeGoogle) -> None:
        calendar = r"/calendar/v3/calendars/(?P<calendar_id>[^/]+)"
        event = calendar + r"/events/(?P<event_id>[^/]+)"
        for method, pattern, handler in [
            ("GET", calendar, self._http_calendar),
            ("GET", calendar + r"/events", self._http_list),
            ("POST", calendar + r"/events", self._http_insert),
            ("GET", event, self._http_get),
            ("PATCH", event, self._http_patch),
            ("PUT", event, self._http_update),
            ("DELETE", event, self._http_delete),
        ]:
            fake.route(method, pattern, fake.authorized(self._guard(handler)))

    def _guard(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def run(req: Request, calendar_id: str, **kwargs: str) -> Response:
            try:
                with self.lock:
                    cal = self.calendars.get(unquote(calendar_id))
                    if cal is None:
                        raise not_found()
                    return handler(req, cal, **{k: unquote(v) for k, v in kwargs.items()})
            except CalendarError as exc:
                return exc.response()
        return run

    def _http_calendar(self, req: Request, cal: _Calendar) -> Response:
        body = {"kind": "calendar#calendar", "etag": f'"{cal.updated_ms}"', "id": cal.id,
                "summary": cal.summary, "timeZone": cal.time_zone,
                "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}}
        if cal.description:
            body["description"] = cal.description
        return Response(200, body)

    def _query(self, req: Request, cal: _Calendar) -> _Query:
        """events.list's parameters, checked as Calendar checks them."""
        if req.arg("syncToken"):
            clash = next((name for name in NOT_WITH_SYNC_TOKEN if name in req.query), None)
            if clash:  # the wording is the fake's own; the status and location are Google's
                raise CalendarError(400, f"{clash} cannot be used together with syncToken.", "invalid",
                                    location=clash)
        q = _Query(single=req.arg("singleEvents") == "true", show_deleted=req.arg("showDeleted") == "true",
                   out=_zone(req.arg("timeZone"), "timeZone") if req.arg("timeZone") else cal.zone)
        if req.arg("orderBy") == "startTime" and not q.single:
            raise CalendarError(400, "The requested ordering is not available for the particular query.",
                                "invalid", location="orderBy")
        q.time_min, q.time_max, q.updated_min = (_timestamp(req.arg(name)) if req.arg(name) else None
                                                 for name in ("timeMin", "timeMax", "updatedMin"))
        if q.time_min and q.time_max and q.time_min >= q.time_max:
            raise CalendarError(400, "The specified time range is empty.", "timeRangeEmpty", domain="calendar",
                                location="timeMax")
        q.show_deleted = q.show_deleted or q.updated_min is not None
        for name, kind in (("privateExtendedProperty", "private"), ("sharedExtendedProperty", "shared")):
            for constraint in req.query.get(name, []):
                key, _, value = constraint.partition("=")
                q.tests.append(lambda ev, k=kind, n=key, v=value:
                               ev.resource.get("extendedProperties", {}).get(k, {}).get(n) == v)
        uid = req.arg("iCalUID")
        if uid:
            q.tests.append(lambda ev: f"{ev.series_id or ev.id}@google.com" == uid)
        for term in (req.arg("q") or "").lower().split():
            q.tests.append(lambda ev, t=term: any(t in str(ev.resource.get(key, "")).lower()
                                                  for key in ("summary", "description", "location")))
        return q

    def _http_list(self, req: Request, cal: _Calendar) -> Response:
        try:
            size = min(int(req.arg("maxResults") or DEFAULT_RESULTS), MAX_RESULTS)
        except ValueError:
            size = 0
        if size < 1:
            raise CalendarError(400, f"Invalid value '{req.arg('maxResults')}'. Values must be within the "
                                f"range: [1, {MAX_RESULTS}]", "invalid", location="maxResults")
        q = self._query(req, cal)
        sync_token = req.arg("syncToken")
        if sync_token:
            issued = self._sync_tokens.get(sync_token)
            if issued is None or issued[0] != cal.id:
                raise CalendarError(410, "Sync token is no longer valid, a full sync is required.",
                                    "fullSyncRequired", domain="calendar", location="syncToken")
            q.since = issued[1]
        page_token = req.arg("pageToken")
        if page_token:
            listing, offset = self._pages.get(page_token, (None, 0))
            if listing is None or listing.calendar_id != cal.id:
                raise CalendarError(400, "Invalid page token value.", "invalid", location="pageToken")
        else:
            order = req.arg("orderBy")
            listing, offset = _Listing(cal.id, self._select(cal, q, order), self._seq, sync=order is None), 0
        body: dict[str, Any] = {
            "kind": "calendar#events", "etag": f'"p{cal.updated_ms:x}"', "summary": cal.summary,
            **({"description": cal.description} if cal.description else {}),
            "updated": rfc3339_ms(cal.updated_ms), "timeZone": cal.time_zone, "accessRole": "owner",
            "defaultReminders": []}
        if offset + size < len(listing.items):
            token = "Cj" + secrets.token_urlsafe(30)
            self._pages[token] = (listing, offset + size)
            body["nextPageToken"] = token
        elif listing.sync:
            token = "CP" + secrets.token_urlsafe(18) + "="
            self._sync_tokens[token] = (cal.id, listing.seq)
            body["nextSyncToken"] = token
        body["items"] = listing.items[offset:offset + size]
        return Response(200, body)

    def _checked(self, req: Request, cal: _Calendar, event_id: str) -> _Event:
        """The event a write targets (an instance becomes an exception), honouring If-Match."""
        ev, original = self._lookup(cal, event_id)
        if original is not None and ev.cancelled:  # an instance of a deleted series
            raise CalendarError(410, "Resource has been deleted", "deleted")
        if original is not None:
            ev = self._exception(cal, ev.id, original)
        wanted = req.header("If-Match")
        if wanted and wanted != self._render(cal, ev, cal.zone, minimal=True)["etag"]:
            raise CalendarError(412, "Precondition Failed", "conditionNotMet")
        return ev

    def _http_get(self, req: Request, cal: _Calendar, event_id: str) -> Response:
        ev, original = self._lookup(cal, event_id)
        out = _zone(req.arg("timeZone"), "timeZone") if req.arg("timeZone") else cal.zone
        return Response(200, self._render(cal, ev, out, original))

    def _http_insert(self, req: Request, cal: _Calendar) -> Response:
        body = req.json()
        event_id = body.get("id") or _new_id()
        if not _EVENT_ID.fullmatch(event_id):
            raise CalendarError(400, "Invalid resource id value.", "invalid")
        ev = self._create(cal, {k: v for k, v in body.items() if k not in READ_ONLY}, event_id)
        return Response(200, self._render(cal, ev, cal.zone))

    def _http_patch(self, req: Request, cal: _Calendar, event_id: str) -> Response:
        ev = self._checked(req, cal, event_id)
        self._change(cal, ev, req.json())
        return Response(200, self._render(cal, ev, cal.zone))

    def _http_update(self, req: Request, cal: _Calendar, event_id: str) -> Response:
        ev = self._checked(req, cal, event_id)
        self._change(cal, ev, req.json(), replace=True)
        return Response(200, self._render(cal, ev, cal.zone))

    def _http_delete(self, req: Request, cal: _Calendar, event_id: str) -> Response:
        ev = self._checked(req, cal, event_id)
        if ev.cancelled:
            raise CalendarError(410, "Resource has been deleted", "deleted")
        self._cancel(cal, ev)
        return Response(204, b"")


def _new_id() -> str:
    """An event id as Calendar makes them: 26 base32hex characters."""
    return base64.b32hexencode(secrets.token_bytes(16)).decode().lower().rstrip("=")
