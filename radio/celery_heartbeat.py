"""A Celery worker boot step that writes a heartbeat to Redis for /healthz.

Each worker sets `onair:celery-heartbeat:<hostname>` with a time-to-live of the
stale age, every CELERY_HEARTBEAT_SECONDS, from the worker's own timer. A worker
that dies simply lets its key expire.
"""

from __future__ import annotations

import logging
import time

from celery import bootsteps

logger = logging.getLogger(__name__)

KEY_PREFIX = "onair:celery-heartbeat:"


def redis_client():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def beat(client, hostname: str, ttl: float) -> None:
    client.set(KEY_PREFIX + hostname, f"{time.time():.3f}", px=int(ttl * 1000))


class HeartbeatStep(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.client = None

    def start(self, worker) -> None:
        from django.conf import settings

        self.client = redis_client()
        interval = settings.CELERY_HEARTBEAT_SECONDS
        ttl = settings.CELERY_STALE_SECONDS
        hostname = worker.hostname

        def tick() -> None:
            try:
                beat(self.client, hostname, ttl)
            except Exception:  # noqa: BLE001 - Redis down: /healthz reports it
                logger.warning("celery worker=%s heartbeat not written", hostname, exc_info=True)

        tick()
        self.tref = worker.timer.call_repeatedly(interval, tick)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
        try:
            if self.client is not None:
                self.client.delete(KEY_PREFIX + worker.hostname)
        except Exception:  # noqa: BLE001
            logger.warning("celery worker=%s heartbeat not removed: redis unavailable",
                           worker.hostname)
