"""Google Calendar → `CalendarEvent` rows, through the shared sync-run harness (radio/sync.py).

Per calendar of the station:
- **full** (first run, after Google's 410 "full sync required", and every `FULL_EVERY` so the
  rolling window moves on): events.list with `singleEvents=true` (recurring series expanded
  into instances, moved and cancelled instances as Google gives them) from a day ago to
  `window_days` ahead, all pages; rows of this calendar that Google no longer lists in that
  window are marked cancelled (kept, never deleted); the last page's `nextSyncToken` is kept;
- **incremental**: events.list with that `syncToken` (Google refuses timeMin/timeMax with
  it): only what changed, cancelled instances included. Instances beyond the window are not
  stored (the next full run brings them in when the window reaches them).

Every event is parsed (scheduling/directives.py) and resolved (scheduling/content.py); one
that cannot be played is kept as unresolved with the reason, and staff are notified once per
new problem. All-day events are notes: listed, never on air. Rows are written in bulk, so a
calendar of 10,000 events syncs in seconds (bench/schedule_precision.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from googleapiclient.errors import HttpError

from radio.google import google_execute, google_service, station_credentials
from radio.models import Notification, SyncCursor, SyncRun
from radio.services import notification_post
from radio.sync import Progress, sync_run
from scheduling.content import Resolved, resolve
from scheduling.directives import parse_event
from scheduling.models import CalendarEvent, CalendarSource
from scheduling.planner import schedule_update
from scheduling.writeback import is_managed, write_back

logger = logging.getLogger(__name__)

FULL_EVERY = timedelta(hours=6)
PAGE_SIZE = 2500
PAST = timedelta(days=1)
_FIELDS_COPIED = ("recurring_event_id", "summary", "description", "starts_at", "ends_at", "all_day",
                  "time_zone", "status", "problem", "ref", "content_kind", "track", "playlist", "genre",
                  "mode", "fill", "priority", "updated", "raw")


class FullSyncRequired(Exception):
    pass


def _instant(value: dict[str, Any] | None, zone: str) -> tuple[datetime | None, bool]:
    """(UTC instant, all day?) of an event's start or end."""
    if not value:
        return None, False
    if value.get("dateTime"):
        moment = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        if moment.tzinfo is None:  # Google always sends an offset; be safe
            moment = moment.replace(tzinfo=_zone(value.get("timeZone") or zone))
        return moment.astimezone(UTC), False
    if value.get("date"):
        day = date.fromisoformat(value["date"])
        return datetime.combine(day, time(0), tzinfo=_zone(value.get("timeZone") or zone)).astimezone(UTC), True
    return None, False


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class _Resolver:
    """Content resolution with a cache per run: 10,000 events name few distinct things."""

    def __init__(self, station) -> None:
        self.station = station
        self.cache: dict[tuple[str | None, str], Resolved] = {}

    def __call__(self, kind: str | None, ref: str) -> Resolved:
        key = (kind, ref)
        if key not in self.cache:
            self.cache[key] = resolve(self.station, kind, ref)
        return self.cache[key]


def event_fields(item: dict[str, Any], source: CalendarSource, resolver: _Resolver) -> dict[str, Any]:
    """The row's fields for one event as Google sent it."""
    zone = source.time_zone or source.station.time_zone
    starts, all_day = _instant(item.get("start"), (item.get("start") or {}).get("timeZone") or zone)
    ends, _all = _instant(item.get("end"), (item.get("end") or {}).get("timeZone") or zone)
    private = ((item.get("extendedProperties") or {}).get("private")) or {}
    directive = parse_event(description=item.get("description"), private=private)
    fields: dict[str, Any] = {
        "recurring_event_id": item.get("recurringEventId", ""), "summary": (item.get("summary") or "")[:500],
        "description": item.get("description") or "", "starts_at": starts, "ends_at": ends,
        "all_day": all_day, "time_zone": (item.get("start") or {}).get("timeZone") or zone,
        "mode": directive.mode or source.default_mode, "fill": directive.fill or source.default_fill,
        "priority": source.priority, "ref": directive.ref[:500], "raw": item, "problem": "",
        "content_kind": "", "track": None, "playlist": None, "genre": None,
        "updated": _instant({"dateTime": item["updated"]}, "UTC")[0] if item.get("updated") else None,
    }
    if item.get("status") == "cancelled":
        # Google sends a deleted event as its id and status alone: keep what the row knew.
        return {"status": CalendarEvent.Status.CANCELLED, "problem": _("Deleted in the calendar.")}
    if all_day:
        fields["status"] = CalendarEvent.Status.NOTE
        return fields
    if starts is None or ends is None or ends <= starts:
        fields.update(status=CalendarEvent.Status.UNRESOLVED, problem=_("The event has no valid time."))
        return fields
    kind, ref = directive.kind, directive.ref
    if directive.error:
        fields.update(status=CalendarEvent.Status.UNRESOLVED, problem=directive.error)
        return fields
    if kind is None:
        # Nothing said: an event named like a playlist or a show plays it.
        title = fields["summary"].strip()
        for guess in ("playlist", "show"):
            found = resolver(guess, title) if title else Resolved(error="-")
            if not found.error:
                kind, ref = guess, title
                break
    found = resolver(kind, ref)
    fields.update(content_kind=found.content_kind, track=found.track, playlist=found.playlist,
                  genre=found.genre, ref=(ref or "")[:500])
    if found.error:
        fields.update(status=CalendarEvent.Status.UNRESOLVED, problem=found.error)
    else:
        fields["status"] = CalendarEvent.Status.RESOLVED
    return fields


def _list_pages(service, run: SyncRun, **params: Any):
    """Yield each page of events.list; raises FullSyncRequired on 410."""
    token = None
    while True:
        request = service.events().list(maxResults=PAGE_SIZE, singleEvents=True, pageToken=token, **params)
        try:
            page = google_execute(request, run)
        except HttpError as exc:
            if exc.resp.status == 410:
                raise FullSyncRequired(str(exc)) from exc
            raise
        yield page
        token = page.get("nextPageToken")
        if not token:
            return


def sync_calendar(service, source: CalendarSource, progress: Progress, *, now: datetime | None = None) -> bool:
    """One calendar; True when any row changed. `now` moves the window (tests)."""
    run, now = progress.run, now or timezone.now()
    cursor = SyncCursor.objects.filter(station=source.station, source=source.cursor_source).first()
    full = (cursor is None or source.last_full_sync_at is None
            or now - source.last_full_sync_at >= FULL_EVERY)
    if not full:
        try:
            return _apply(source, progress, _list_pages(service, run, calendarId=source.calendar_id,
                                                         syncToken=cursor.token), full=False, now=now)
        except FullSyncRequired:
            logger.info("station=%s calendar=%s: sync token expired (410), full sync", source.station.slug,
                        source.calendar_id)
            progress.add("full_resyncs")
    meta = google_execute(service.calendars().get(calendarId=source.calendar_id), run)
    source.time_zone = meta.get("timeZone") or source.station.time_zone
    source.window_start, source.window_end = now - PAST, now + timedelta(days=source.window_days)
    pages = _list_pages(service, run, calendarId=source.calendar_id, timeMin=source.window_start.isoformat(),
                        timeMax=source.window_end.isoformat(), showDeleted=False)
    return _apply(source, progress, pages, full=True, now=now)


def _apply(source: CalendarSource, progress: Progress, pages, *, full: bool, now: datetime) -> bool:
    resolver = _Resolver(source.station)
    # A full run needs every row (to find what is gone); an incremental one only the page's.
    existing = {e.event_id: e for e in CalendarEvent.objects.filter(calendar=source)} if full else {}
    seen: set[str] = set()
    creates: list[CalendarEvent] = []
    updates: list[CalendarEvent] = []
    problems: list[CalendarEvent] = []
    token = None
    gone_series: set[str] = set()
    for page in pages:
        if page.get("timeZone") and not source.time_zone:
            source.time_zone = page["timeZone"]
        if not full:
            ids = [item["id"] for item in page.get("items", []) if item.get("id")]
            existing.update((e.event_id, e) for e in CalendarEvent.objects.filter(calendar=source,
                                                                                  event_id__in=ids))
        for item in page.get("items", []):
            event_id = item.get("id")
            if not event_id:
                continue
            if is_managed(item):
                continue  # a programme slot written back by us: the slot plays it, not the event
            seen.add(event_id)
            if item.get("status") == "cancelled" and not item.get("recurringEventId"):
                gone_series.add(event_id)  # a whole series deleted comes back as its id alone
            fields = event_fields(item, source, resolver)
            if (fields["status"] != CalendarEvent.Status.CANCELLED and source.window_end
                    and fields.get("starts_at") and fields["starts_at"] > source.window_end):
                progress.add("beyond_window")
                continue
            row = existing.get(event_id)
            if row is None:
                if fields["status"] == CalendarEvent.Status.CANCELLED:
                    continue  # never seen, now gone: nothing to remember
                row = CalendarEvent(station=source.station, calendar=source, event_id=event_id, **fields)
                creates.append(row)
                progress.add("new")
                if row.status == CalendarEvent.Status.UNRESOLVED:
                    problems.append(row)
                continue
            before = (row.status, row.problem, row.starts_at, row.ends_at, row.raw)
            old_problem = (row.status, row.problem)
            for name, value in fields.items():
                setattr(row, name, value)
            if before != (row.status, row.problem, row.starts_at, row.ends_at, row.raw):
                updates.append(row)
                progress.add("cancelled" if row.status == CalendarEvent.Status.CANCELLED else "changed")
                if row.status == CalendarEvent.Status.UNRESOLVED and (row.status, row.problem) != old_problem:
                    problems.append(row)
        token = page.get("nextSyncToken") or token
        progress.publish(events=len(seen))
    if full:
        # Gone from Google's listing of the window: deleted or moved out of it.
        for event_id, row in existing.items():
            if event_id not in seen and row.status != CalendarEvent.Status.CANCELLED and row.starts_at \
                    and source.window_start <= row.starts_at < source.window_end:
                row.status, row.problem = CalendarEvent.Status.CANCELLED, _("No longer in the calendar.")
                updates.append(row)
                progress.add("cancelled")
    with transaction.atomic():
        if gone_series:
            instances = CalendarEvent.objects.filter(calendar=source, recurring_event_id__in=gone_series)
            instances = instances.exclude(status=CalendarEvent.Status.CANCELLED)
            progress.add("cancelled", instances.update(status=CalendarEvent.Status.CANCELLED,
                                                       problem=_("The series was deleted.")))
        CalendarEvent.objects.bulk_create(creates, batch_size=1000)
        if updates:
            CalendarEvent.objects.bulk_update(updates, [*_FIELDS_COPIED, "synced_at"], batch_size=500)
        if token:
            SyncCursor.objects.update_or_create(station=source.station, source=source.cursor_source,
                                                defaults={"token": token})
        source.last_sync_at, source.last_error = now, ""
        if full:
            source.last_full_sync_at = now
        source.save(update_fields=["time_zone", "window_start", "window_end", "last_sync_at",
                                   "last_full_sync_at", "last_error"])
    for row in problems[:20]:
        _notify_problem(row)
    if len(problems) > 20:
        notification_post(station=source.station, level=Notification.Level.WARNING, source="calendar",
                          message=_("%(n)d more calendar events cannot be played; see Calendar events "
                                    "in the admin.") % {"n": len(problems) - 20})
    return bool(creates or updates or progress.counts.get("cancelled"))


def _notify_problem(row: CalendarEvent) -> None:
    zone = _zone(row.station.time_zone)
    when = row.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if row.starts_at else "?"
    notification_post(station=row.station, level=Notification.Level.WARNING, source="calendar",
                      message=(_("Calendar event “%(title)s” at %(when)s cannot be played: %(why)s") % {
                          "title": row.summary or row.event_id, "when": when, "why": row.problem})[:500])


def calendar_sync_run(*, station, triggered_by_id: int | None = None,
                      now: datetime | None = None) -> SyncRun | None:
    """Sync every enabled calendar of the station as one run. None when another run holds the lease."""
    sources = list(CalendarSource.objects.filter(station=station, enabled=True).select_related("station"))
    if not sources:
        return None

    def body(progress: Progress) -> None:
        # An attempt counts for the interval, so a failing Google is not asked again every beat tick.
        CalendarSource.objects.filter(pk__in=[s.pk for s in sources]).update(last_sync_at=timezone.now())
        service = google_service("calendar", "v3", station_credentials(station))
        changed = False
        for source in sources:
            try:
                changed = sync_calendar(service, source, progress, now=now) or changed
                if source.write_back:
                    write_back(service, source, progress)
            except Exception as exc:
                CalendarSource.objects.filter(pk=source.pk).update(last_error=str(exc)[:2000])
                raise
        if changed:
            schedule_update(station, reason="calendar")

    return sync_run(station=station, source="calendar", kind=SyncRun.Kind.CALENDAR, body=body,
                    triggered_by_id=triggered_by_id)
