"""Celery tasks of the radio app: small, ids in, small dicts out."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.core.cache import cache
from django.utils import translation
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)


@shared_task(name="radio.tasks.ping")
def ping(value: str) -> dict:
    """Round trip through the broker and result backend; used by tests and operators."""
    return {"pong": value}


@shared_task(name="radio.tasks.playback_watchdog", ignore_result=True)
def playback_watchdog() -> dict:
    """Tell operators when a station's playback worker stops beating.

    Raises one notification per outage (not one per run) by remembering, per
    station, whether the last run already saw it down.
    """
    from radio.health import check_playback
    from radio.models import Notification, Station
    from radio.services import notification_post

    alerted = []
    for slug, state in check_playback(database_ok=True).items():
        key = f"onair:watchdog:playback:{slug}"
        was_down = cache.get(key, False)
        if not state["ok"] and not was_down:
            station = Station.objects.get(slug=slug)
            with translation.override(station.language):
                message = _("Playback worker is down: %(detail)s") % {"detail": state["detail"]}
            notification_post(station=station, level=Notification.Level.ERROR,
                              source="watchdog", message=message)
            logger.error("station=%s playback worker down: %s", slug, state["detail"])
            alerted.append(slug)
        cache.set(key, not state["ok"], None)
    return {"alerted": alerted}


@worker_ready.connect
def close_stale_sync_runs(**kwargs) -> None:
    """At worker start: a sync run left "running" by a process that died is closed as failed."""
    from radio.sync import sync_runs_close_stale

    try:
        closed = sync_runs_close_stale()
    except Exception:  # noqa: BLE001 - never keep a worker from starting; the next run mends it
        logger.exception("stale sync runs not closed at worker start")
        return
    if closed:
        logger.warning("%s stale sync run(s) closed as failed at worker start", closed)
