"""Celery tasks of the schedule: calendar sync (beat asks every CALENDAR_SYNC_TICK seconds which
calendars are due by their own interval) and the preflight. Never on the on-air path: the
playback worker reads the programme from the database itself."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="scheduling.tasks.calendar_sync", ignore_result=True)
def calendar_sync(station_id: int, user_id: int | None = None) -> dict:
    from radio.models import Station
    from scheduling.calendar_sync import calendar_sync_run

    station = Station.objects.filter(pk=station_id).first()
    if station is None:
        return {"station": station_id, "status": "gone"}
    run = calendar_sync_run(station=station, triggered_by_id=user_id)
    if run is not None and run.retry_after:
        countdown = min(run.retry_after, 60.0) * random.uniform(1.0, 1.5)
        try:
            calendar_sync.apply_async((station_id, user_id), countdown=countdown)
        except Exception:  # noqa: BLE001 - broker down: beat asks again anyway
            logger.warning("station=%s calendar sync retry not queued", station_id, exc_info=True)
    return {"station": station_id, "run": run.pk if run else None,
            "status": run.status if run else "skipped"}


@shared_task(name="scheduling.tasks.calendar_sync_due", ignore_result=True)
def calendar_sync_due() -> dict:
    """Beat: queue a sync for each station with a calendar whose interval has passed."""
    from scheduling.models import CalendarSource

    now = timezone.now()
    sources = CalendarSource.objects.filter(enabled=True).values_list("station_id", "last_sync_at",
                                                                       "interval_seconds")
    # A little early: the beat's tick must not make a 60 s interval into 70 s.
    ids = sorted({station for station, last, every in sources
                  if last is None or now - last >= timedelta(seconds=max(1, every - 5))})
    for station_id in ids:
        calendar_sync.delay(station_id)
    return {"stations": ids}


def calendar_sync_request(*, station, actor=None) -> None:
    """"Sync now" (admin, API): queued after the caller's transaction; nothing without a calendar."""
    from django.db import transaction

    from scheduling.models import CalendarSource

    if not CalendarSource.objects.filter(station=station, enabled=True).exists():
        return

    user_id = actor.pk if actor is not None and actor.is_authenticated else None
    transaction.on_commit(lambda: calendar_sync.delay(station.pk, user_id))


@shared_task(name="scheduling.tasks.preflight", ignore_result=True, soft_time_limit=50, time_limit=60)
def preflight() -> dict:
    """Beat: warn staff 24 h and 1 h ahead of scheduled content that cannot play yet."""
    from scheduling.preflight import preflight_all

    return preflight_all()
