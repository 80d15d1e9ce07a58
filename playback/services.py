"""Playback state that pages, the API and the feed share."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from radio.models import Station
from radio.services import heartbeat_age, lease_holder


def playback_lease_key(station: Station | str) -> str:
    slug = station if isinstance(station, str) else station.slug
    return f"playback:{slug}"


def playback_snapshot(station: Station) -> dict[str, Any]:
    """The full status a client gets on connect: worker liveness plus what it reported."""
    beat = lease_holder(playback_lease_key(station))
    age = heartbeat_age(beat)
    worker_up = age is not None and age <= settings.PLAYBACK_STALE_SECONDS
    reported = dict(beat.status) if beat is not None and worker_up else {}
    return {
        "station": station.slug,
        "worker": {
            "up": worker_up,
            "heartbeat_at": beat.beat_at.isoformat() if beat and beat.beat_at else None,
            "started_at": beat.started_at.isoformat() if beat and beat.started_at and worker_up
            else None,
        },
        "is_playing": bool(reported.get("is_playing", False)),
        "current": reported.get("current"),
        "volume": reported.get("volume"),
        "queue": reported.get("queue", []),
    }
