"""What the programme asks for over a window: calendar events and programme slots, merged.

`plan(station, start, end)` reads the rows and applies the pure rules: slot occurrences in
UTC (recurrence.py) and the priority rule (timeline.py). Unresolved events and all-day notes
are listed beside the timeline, never placed: an event that cannot play must not silence a
slot that can. The queue is merged in by the playback app, which imports this
module and not the other way round.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from radio.notify import MessageType, station_notify
from scheduling import timeline
from scheduling.models import CalendarEvent, Fill, Mode, ProgramSlot
from scheduling.recurrence import WeeklySlot, occurrences

logger = logging.getLogger(__name__)

# The priority rule's words (scheduling/timeline.py), for people.
OUTCOMES = {"starts late": _lazy("starts late"), "ends early": _lazy("ends early"), "dropped": _lazy("dropped")}
REASONS = {"hard over soft": _lazy("hard over soft"), "higher priority": _lazy("higher priority"),
           "calendar over slot": _lazy("calendar over slot"), "earlier start": _lazy("earlier start")}

# Sent (station=…) after the programme changed: playback nudges its worker.
schedule_changed = Signal()


@dataclass
class Planned:
    """One entry of the timeline: when, from where, what it plays, and what changed it."""

    key: str  # "event:<pk>" or "slot:<pk>:<start, UTC ISO>"
    start: datetime
    end: datetime
    source: str  # "calendar" | "slot"
    hard: bool
    priority: int
    label: str
    content_kind: str = ""
    track_id: int | None = None
    playlist_id: int | None = None
    genre_id: int | None = None
    show_name: str = ""
    fill: str = Fill.ROTATION
    scheduled_start: datetime | None = None  # before the priority rule moved it
    scheduled_end: datetime | None = None
    notes: list[str] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("start", "end", "scheduled_start", "scheduled_end"):
            out[name] = out[name].isoformat() if out[name] else None
        out["mode"] = Mode.HARD if self.hard else Mode.SOFT
        return out


@dataclass
class Plan:
    entries: list[Planned]
    conflicts: list[dict[str, Any]]
    unresolved: list[CalendarEvent]
    notes: list[CalendarEvent]


def _event_entry(event: CalendarEvent) -> Planned:
    return Planned(key=f"event:{event.pk}", start=event.starts_at, end=event.ends_at, source="calendar",
                   hard=event.mode == Mode.HARD, priority=event.priority, label=event.summary,
                   content_kind=event.content_kind, track_id=event.track_id,
                   playlist_id=event.playlist_id, genre_id=event.genre_id, show_name=event.ref
                   if event.content_kind == "show" else "", fill=event.fill)


def _slot_entries(slot: ProgramSlot, zone: str, start: datetime, end: datetime) -> list[Planned]:
    rule = WeeklySlot(frozenset(slot.weekdays), slot.start_time, slot.end_time, zone,
                      slot.first_day, slot.last_day)
    return [Planned(key=f"slot:{slot.pk}:{begins.isoformat()}", start=begins, end=ends, source="slot",
                    hard=slot.mode == Mode.HARD, priority=slot.priority, label=slot.name,
                    content_kind=slot.content_kind, track_id=slot.track_id, playlist_id=slot.playlist_id,
                    genre_id=slot.genre_id, show_name=slot.show_name, fill=slot.fill)
            for begins, ends in occurrences(rule, start, end)]


def plan(station, start: datetime, end: datetime) -> Plan:
    events = list(CalendarEvent.objects.filter(
        station=station, calendar__enabled=True, starts_at__lt=end, ends_at__gt=start,
        status__in=[CalendarEvent.Status.RESOLVED, CalendarEvent.Status.UNRESOLVED,
                    CalendarEvent.Status.NOTE]).order_by("starts_at", "pk"))
    wanted: list[Planned] = [_event_entry(e) for e in events if e.status == CalendarEvent.Status.RESOLVED]
    for slot in ProgramSlot.objects.filter(station=station, enabled=True):
        if slot.content_kind:
            wanted.extend(_slot_entries(slot, station.time_zone, start, end))
    by_key = {p.key: p for p in wanted}
    placed, conflicts = timeline.resolve(
        timeline.Entry(p.key, p.start, p.end, p.source, p.hard, p.priority, p.label) for p in wanted)
    entries = []
    for kept in placed:
        entry = by_key[kept.id]
        if (kept.start, kept.end) != (entry.start, entry.end):
            entry.scheduled_start, entry.scheduled_end = entry.start, entry.end
            entry.start, entry.end = kept.start, kept.end
        entries.append(entry)
    notes_by_key: dict[str, list[str]] = {}
    conflict_data = []
    for c in conflicts:
        conflict_data.append({
            "winner": c.winner.id, "winner_label": c.winner.label, "loser": c.loser.id,
            "loser_label": c.loser.label, "start": c.start.isoformat(), "end": c.end.isoformat(),
            "outcome": c.outcome, "reason": c.reason})
        notes_by_key.setdefault(str(c.loser.id), []).append(_("%(outcome)s: %(reason)s (%(winner)s)") % {
            "outcome": OUTCOMES.get(c.outcome, c.outcome), "reason": REASONS.get(c.reason, c.reason),
            "winner": c.winner.label})
    for entry in entries:
        entry.notes = notes_by_key.get(entry.key, [])
    entries = [e for e in entries if e.end > start and e.start < end]
    return Plan(entries, conflict_data,
                [e for e in events if e.status == CalendarEvent.Status.UNRESOLVED],
                [e for e in events if e.status == CalendarEvent.Status.NOTE])


def event_data(event: CalendarEvent) -> dict[str, Any]:
    return {"id": event.pk, "event_id": event.event_id, "summary": event.summary,
            "starts_at": event.starts_at.isoformat() if event.starts_at else None,
            "ends_at": event.ends_at.isoformat() if event.ends_at else None, "all_day": event.all_day,
            "status": event.status, "problem": event.problem, "mode": event.mode,
            "content_kind": event.content_kind, "ref": event.ref}


def plan_data(result: Plan) -> dict[str, Any]:
    return {"entries": [e.data() for e in result.entries], "conflicts": result.conflicts,
            "unresolved": [event_data(e) for e in result.unresolved],
            "notes": [event_data(e) for e in result.notes]}


SCHEDULE_UPDATE_HOURS = 12


def schedule_update(station, *, reason: str = "") -> None:
    """After a change to the programme is committed: tell the station's clients and the worker."""
    def send() -> None:
        now = timezone.now()
        try:
            data = plan_data(plan(station, now, now + timedelta(hours=SCHEDULE_UPDATE_HOURS)))
        except Exception:  # noqa: BLE001 - a live update only; the rows are saved
            logger.warning("station=%s schedule_update not built", station.slug, exc_info=True)
            return
        data.update(reason=reason, hours=SCHEDULE_UPDATE_HOURS, at=now.isoformat())
        station_notify(station.slug, MessageType.SCHEDULE_UPDATE, data)
        schedule_changed.send(sender=None, station=station)
    transaction.on_commit(send)
