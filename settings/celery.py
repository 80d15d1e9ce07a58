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
    "library.tasks.*analy*": {"queue": "analysis"},
    "radio.tasks.*": {"queue": "notify"},
}

# Every entry expires just under its period, so runs cannot pile up while a
# worker is down. Beat does housekeeping and sync only, never on-air timing.
app.conf.beat_schedule = {
    "playback-watchdog": {
        "task": "radio.tasks.playback_watchdog",
        "schedule": 30.0,
        "options": {"expires": 25.0},
    },
}

app.autodiscover_tasks()

# Import the worker heartbeat boot step (see radio/celery_heartbeat.py).
from radio.celery_heartbeat import HeartbeatStep  # noqa: E402

app.steps["worker"].add(HeartbeatStep)
