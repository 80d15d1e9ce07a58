"""The programme as the playback worker needs it: upcoming starts with their content ready to play.

Read on the backstage thread (never on the on-air thread): the planner's timeline for the next
hours (scheduling/planner.py: calendar events and slots through the priority rule), each entry
turned into a `Start` — when (UTC), hard or soft, and, once it is near (`MATERIALISE_WITHIN`),
the entries that play it: a track, a show's newest episode, a playlist's next items (its place
moves on once per start), a genre's least recently played songs, enough to fill the entry.

Also `timeline_data`, for the API and the station page: the programme merged with what the
queue will play until the next start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from library.models import Playlist, Track
from library.playlists import playlist_next
from playback.entry import Entry
from playback.models import Reason
from scheduling.content import show_tracks
from scheduling.planner import Planned, plan, plan_data

logger = logging.getLogger(__name__)

HORIZON = timedelta(hours=3)
MATERIALISE_WITHIN = timedelta(minutes=30)
MAX_ITEMS = 200


@dataclass
class Start:
    key: str
    at: datetime  # UTC, after the priority rule
    end: datetime
    hard: bool
    label: str
    fill: str
    entries: list[Entry] | None = None  # None: not read yet (far ahead)
    problem: str = ""
    planned: dict[str, Any] = field(default_factory=dict)


def _fill_to(tracks, seconds: float) -> list[Track]:
    chosen, total = [], 0.0
    for track in tracks:
        if total >= seconds or len(chosen) >= MAX_ITEMS:
            break
        chosen.append(track)
        total += max(1.0, (track.cue_out or track.duration or 0) - (track.cue_in or 0))
    return chosen


def content_tracks(station, entry: Planned) -> list[Track]:
    """What the entry plays, in order, enough to fill it (a single item for a track or a show)."""
    seconds = (entry.end - entry.start).total_seconds()
    if entry.content_kind == "track":
        track = Track.objects.playable().filter(pk=entry.track_id, station=station).first()
        return [track] if track else []
    if entry.content_kind == "show":
        episode = show_tracks(station, entry.show_name).first()
        return [episode] if episode is not None and episode.is_playable else []
    if entry.content_kind == "playlist":
        playlist = Playlist.objects.filter(pk=entry.playlist_id, station=station).first()
        if playlist is None:
            return []
        picked: list[Track] = []
        total = 0.0
        while total < seconds and len(picked) < MAX_ITEMS:
            batch = playlist_next(playlist, count=10)
            if not batch:
                break
            for track in batch:
                picked.append(track)
                total += max(1.0, (track.cue_out or track.duration or 0) - (track.cue_in or 0))
                if total >= seconds:
                    break
        return picked
    if entry.content_kind == "genre":
        songs = (Track.objects.playable().filter(station=station, genre_id=entry.genre_id, kind=Track.Kind.SONG)
                 .order_by(F("last_played_at").asc(nulls_first=True), "?"))
        return _fill_to(songs[:MAX_ITEMS], seconds)
    return []


def read_starts(station, *, now: datetime | None = None, known: dict[str, Start] | None = None) -> list[Start]:
    """Upcoming starts (from now to HORIZON), content read for those within MATERIALISE_WITHIN.

    `known`: starts read before (by key); their content is kept, so a playlist's place moves
    on once per start, not at every read.
    """
    now = now or timezone.now()
    known = known if known is not None else {}
    result = plan(station, now - timedelta(seconds=5), now + HORIZON)
    starts = []
    for entry in result.entries:
        if entry.start < now - timedelta(seconds=5):
            continue  # already under way: the worker does not restart it
        start = Start(key=entry.key, at=entry.start, end=entry.end, hard=entry.hard, label=entry.label,
                      fill=entry.fill, planned=entry.data())
        old = known.get(entry.key)
        if old is not None and old.entries is not None and old.at == start.at:
            start.entries, start.problem = old.entries, old.problem
        elif entry.start - now <= MATERIALISE_WITHIN:
            tracks = content_tracks(station, entry)
            start.entries = [Entry.from_track(t, reason=Reason.SCHEDULE, note=entry.label) for t in tracks]
            if not tracks:
                start.problem = "nothing playable"
        known[entry.key] = start
        starts.append(start)
    return starts


def timeline_data(station, start: datetime, end: datetime) -> dict[str, Any]:
    """The programme over [start, end) with the queue before the next start (estimated times)."""
    from playback.models import PlayerState, QueueItem

    data = plan_data(plan(station, start, end))
    now = timezone.now()
    state = PlayerState.objects.filter(station=station).first()
    at = now
    if state and state.is_playing and state.started_at and state.duration:
        at = max(now, state.started_at + timedelta(seconds=state.duration))
    next_start = min((datetime.fromisoformat(e["start"]) for e in data["entries"]
                      if datetime.fromisoformat(e["start"]) >= now), default=None)
    queue = []
    items = (QueueItem.objects.filter(station=station, status=QueueItem.Status.QUEUED)
             .select_related("track").order_by("position", "id")[:50])
    for item in items:
        if next_start is not None and at >= next_start:
            break
        length = (item.track.cue_out or item.track.duration or 0) - (item.track.cue_in or 0)
        queue.append({"queue_item": item.pk, "track": item.track_id, "title": str(item.track),
                      "reason": item.reason, "start": at.isoformat(),
                      "end": (at + timedelta(seconds=max(0.0, length))).isoformat(), "source": "queue"})
        at += timedelta(seconds=max(0.0, length))
    data["queue"] = queue
    return data
