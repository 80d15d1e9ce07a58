"""Library Celery tasks: ids in, small dicts out; retries only for transient errors."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="library.tasks.analyse_track", ignore_result=True, soft_time_limit=300,
             time_limit=360)
def analyse_track(track_id: int) -> dict:
    from library.models import Track
    from library.services import track_analyse

    track = Track.objects.filter(pk=track_id).select_related("station").first()
    if track is None:
        return {"track": track_id, "status": "gone"}
    track = track_analyse(track=track)
    return {"track": track_id, "status": track.analysis}
