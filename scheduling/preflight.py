"""The preflight: 24 h and 1 h before a scheduled start, is what it plays ready to go on air?

Checks every placed entry of the timeline (calendar events and slot occurrences) and every
unresolved event, and posts one warning per entry and level (24h, then 1h) to the station's
notifications. An event remembers its warnings on its row; a slot occurrence in the cache
(a lost cache entry only means a repeated warning).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from radio.models import Notification, Station
from radio.services import notification_post
from scheduling.content import readiness
from scheduling.models import CalendarEvent
from scheduling.planner import plan

logger = logging.getLogger(__name__)

LEVELS = (("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)))


def _level(lead: timedelta) -> str | None:
    return next((name for name, limit in LEVELS if lead <= limit), None)


def preflight_station(station: Station, *, now=None) -> list[str]:
    """Warnings posted (their messages)."""
    now = now or timezone.now()
    result = plan(station, now, now + timedelta(hours=24))
    zone = ZoneInfo(station.time_zone)
    posted: list[str] = []
    events = {f"event:{e.pk}": e for e in CalendarEvent.objects.filter(
        pk__in=[int(p.key.split(":")[1]) for p in result.entries if p.key.startswith("event:")])}
    checks = []
    for entry in result.entries:
        if entry.start < now:
            continue
        why = readiness(station, content_kind=entry.content_kind,
                        track=events[entry.key].track if entry.key in events else _track(entry.track_id),
                        playlist=_playlist(entry.playlist_id), genre=_genre(entry.genre_id),
                        show_name=entry.show_name)
        if why:
            checks.append((entry.key, entry.label, entry.start, why, events.get(entry.key)))
    for event in result.unresolved:
        if event.starts_at and event.starts_at >= now:
            checks.append((f"event:{event.pk}", event.summary, event.starts_at, event.problem, event))
    for key, label, start, why, event in checks:
        level = _level(start - now)
        if level is None:
            continue
        if event is not None:
            if level in (event.warned or []):
                continue
        elif cache.get(f"preflight:{key}:{level}"):
            continue
        when = start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        message = (_("In less than an hour, “%(label)s” at %(when)s cannot play: %(why)s") if level == "1h"
                   else _("Tomorrow's “%(label)s” at %(when)s cannot play yet: %(why)s")) % {
            "label": label, "when": when, "why": why}
        notification_post(station=station, message=message[:500], level=Notification.Level.WARNING,
                          source="preflight")
        posted.append(message)
        if event is not None:
            event.warned = sorted({*(event.warned or []), level, *(["24h"] if level == "1h" else [])})
            CalendarEvent.objects.filter(pk=event.pk).update(warned=event.warned)
        else:
            try:
                cache.set(f"preflight:{key}:{level}", 1, timeout=int(timedelta(hours=26).total_seconds()))
                if level == "1h":
                    cache.set(f"preflight:{key}:24h", 1, timeout=int(timedelta(hours=26).total_seconds()))
            except Exception:  # noqa: BLE001 - Redis away: the warning may come twice, that is all
                logger.warning("preflight: cache unavailable", exc_info=True)
    return posted


def _track(pk):
    from library.models import Track
    return Track.objects.filter(pk=pk).first() if pk else None


def _playlist(pk):
    from library.models import Playlist
    return Playlist.objects.filter(pk=pk).first() if pk else None


def _genre(pk):
    from library.models import Genre
    return Genre.objects.filter(pk=pk).first() if pk else None


KEEP_PAST = timedelta(days=31)


def preflight_all() -> dict:
    # Calendar events long past are of no use to the programme: the as-run log keeps what aired.
    CalendarEvent.objects.filter(starts_at__lt=timezone.now() - KEEP_PAST).delete()
    counts = {}
    for station in Station.objects.all():
        try:
            counts[station.slug] = len(preflight_station(station))
        except Exception:  # noqa: BLE001 - one station's trouble never stops the others
            logger.exception("station=%s preflight failed", station.slug)
    return counts
