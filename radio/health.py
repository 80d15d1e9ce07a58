"""Health of the station's parts: database, Redis, Celery workers, playback workers."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import connection

from radio.celery_heartbeat import KEY_PREFIX, redis_client
from radio.db import pool_stats

logger = logging.getLogger(__name__)


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001
        logger.warning("health: database down: %s", exc)
        return {"ok": False, "detail": "database unreachable"}
    pool = pool_stats()
    # The web process's pooled connections: open, idle, requests waiting for one (radio/db.py).
    return {"ok": True, "pool": pool} if pool is not None else {"ok": True}


def check_redis_and_celery() -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        client = redis_client()
        client.ping()
        keys = list(client.scan_iter(match=KEY_PREFIX + "*", count=100))
        beats = [(k.decode().removeprefix(KEY_PREFIX), client.get(k)) for k in keys]
    except Exception as exc:  # noqa: BLE001
        logger.warning("health: redis down: %s", exc)
        down = {"ok": False, "detail": "redis unreachable"}
        return down, {"ok": False, "detail": "unknown: redis unreachable"}
    now = time.time()
    workers = {
        name: round(now - float(value), 1)
        for name, value in beats
        if value is not None and now - float(value) <= settings.CELERY_STALE_SECONDS
    }
    if not workers:
        return {"ok": True}, {"ok": False, "detail": "no Celery worker heartbeat", "workers": {}}
    return {"ok": True}, {"ok": True, "workers": workers}


def check_playback(database_ok: bool) -> dict[str, dict[str, Any]]:
    if not database_ok:
        return {}
    from radio.models import Station, WorkerHeartbeat
    from radio.services import heartbeat_age

    beats = {b.key: b for b in WorkerHeartbeat.objects.filter(key__startswith="playback:")}
    result: dict[str, dict[str, Any]] = {}
    for slug in Station.objects.values_list("slug", flat=True):
        beat = beats.get(f"playback:{slug}")
        if beat is None or beat.beat_at is None:
            result[slug] = {"ok": False, "detail": "playback worker never started"}
            continue
        if not beat.owner:
            result[slug] = {"ok": False, "detail": "playback worker stopped",
                            "stopped_at": beat.stopped_at.isoformat() if beat.stopped_at else None}
            continue
        age = heartbeat_age(beat)
        if age > settings.PLAYBACK_STALE_SECONDS:
            result[slug] = {"ok": False, "detail": f"no heartbeat for {age:.0f} s",
                            "last_beat": beat.beat_at.isoformat()}
        elif (beat.status or {}).get("dead_air_since"):
            # The worker is alive but nothing leaves its output: the station is off air.
            reason = beat.status.get("dead_air_reason") or ""
            result[slug] = {"ok": False, "detail": f"dead air since {beat.status['dead_air_since']}"
                                                   + (f": {reason}" if reason else ""),
                            "dead_air_since": beat.status["dead_air_since"], "heartbeat_age": round(age, 1)}
        elif (beat.status or {}).get("stream_down_since"):
            # On air locally, but listeners of the Icecast stream hear nothing.
            error = beat.status.get("stream_error") or ""
            since = beat.status["stream_down_since"]
            result[slug] = {"ok": False, "detail": f"Icecast stream down since {since}"
                                                   + (f": {error}" if error else ""),
                            "stream_down_since": beat.status["stream_down_since"],
                            "heartbeat_age": round(age, 1)}
        else:
            result[slug] = {"ok": True, "heartbeat_age": round(age, 1)}
    return result


def health_report() -> dict[str, Any]:
    database = check_database()
    redis_state, celery_state = check_redis_and_celery()
    playback = check_playback(database["ok"])
    checks: dict[str, Any] = {
        "database": database,
        "redis": redis_state,
        "celery": celery_state,
        "playback": playback,
    }
    down = [name for name in ("database", "redis", "celery") if not checks[name]["ok"]]
    down += [f"playback:{slug}" for slug, state in playback.items() if not state["ok"]]
    return {"status": "ok" if not down else "down", "down": down, "checks": checks}
