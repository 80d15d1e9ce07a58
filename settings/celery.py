"""The Celery app: JSON only, time limits, named queues, beat with expiring entries.

https://docs.celeryq.dev/en/stable/django/first-steps-with-django.html
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")

app = Celery("onair")
app.config_from_object("django.conf:settings", namespace="CELERY")

# Queues by kind of work, so a long Drive crawl never delays a notification.
QUEUES = ("default", "sync", "analysis", "notify")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    "library.tasks.*sync*": {"queue": "sync"},
    "library.tasks.*import*": {"queue": "sync"},
    "scheduling.tasks.*sync*": {"queue": "sync"},
    # The sweep only queues work: it must not wait behind the analyses it looks for.
    "library.tasks.analysis_sweep": {"queue": "default"},
    "library.tasks.*analy*": {"queue": "analysis"},
    "radio.tasks.*": {"queue": "notify"},
}

# Every entry expires just under its period, so runs cannot pile up while a
# worker is down. Beat does housekeeping and sync only, never on-air timing.
def _every(seconds: float) -> dict:
    return {"schedule": seconds, "options": {"expires": max(1.0, seconds * 0.9)}}


def _beat_schedule() -> dict:
    from django.conf import settings

    return {
        "playback-watchdog": {"task": "radio.tasks.playback_watchdog", **_every(30.0)},
        "drive-sync": {"task": "library.tasks.drive_sync_all", **_every(settings.DRIVE_SYNC_INTERVAL)},
        "gmail-import": {"task": "library.tasks.gmail_import_all",
                         **_every(settings.GMAIL_IMPORT_INTERVAL)},
        # Calendars sync on their own interval (≤ 60 s); this tick asks which are due.
        "calendar-sync": {"task": "scheduling.tasks.calendar_sync_due",
                          **_every(settings.CALENDAR_SYNC_TICK)},
        "schedule-preflight": {"task": "scheduling.tasks.preflight", **_every(60.0)},
        # Tracks whose analysis could not be queued (broker down at import) get it here.
        "analysis-sweep": {"task": "library.tasks.analysis_sweep", **_every(60.0)},
        # Cached audio no track refers to any more (content changed in Drive) is removed.
        "library-cache-clean": {"task": "library.tasks.cache_clean", **_every(6 * 3600.0)},
    }


@app.on_after_configure.connect
def _install_beat_schedule(sender, **kwargs) -> None:
    sender.conf.beat_schedule = _beat_schedule()

app.autodiscover_tasks()

# Import the worker heartbeat boot step (see radio/celery_heartbeat.py).
from radio.celery_heartbeat import HeartbeatStep  # noqa: E402

app.steps["worker"].add(HeartbeatStep)
