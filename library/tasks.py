"""Library Celery tasks: ids in, small dicts out; retries only for transient errors."""

from __future__ import annotations

import logging
import random

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


@shared_task(name="library.tasks.analysis_sweep", ignore_result=True, soft_time_limit=50,
             time_limit=55)
def analysis_sweep() -> dict:
    """Beat: queue the analysis of tracks whose enqueue was lost (broker down at import)."""
    from library.services import tracks_analysis_sweep

    return {"queued": tracks_analysis_sweep()}


def _retry_later(task, run, *args) -> None:
    """Queue the task again after the run's back-off, with jitter (the beat may come first)."""
    countdown = run.retry_after * random.uniform(1.0, 1.5)
    try:
        task.apply_async(args, countdown=countdown)
    except Exception:  # noqa: BLE001 - broker down: the beat entry runs it later anyway
        logger.warning("station=%s run=%s retry not queued: broker unavailable", run.station_id,
                       run.pk, exc_info=True)
        return
    logger.info("station=%s run=%s %s queued again in %.0f s", run.station_id, run.pk, task.name,
                countdown)


@shared_task(name="library.tasks.drive_sync", ignore_result=True)
def drive_sync(station_id: int, user_id: int | None = None) -> dict:
    """One Drive sync of a station: full crawl first time, changes feed after, then downloads."""
    from library.drive import drive_sync_run
    from radio.models import Station

    station = Station.objects.filter(pk=station_id).first()
    if station is None:
        return {"station": station_id, "status": "gone"}
    run = drive_sync_run(station=station, triggered_by_id=user_id)
    if run is not None and run.retry_after:  # rate limit, Google 5xx, network: try again soon
        _retry_later(drive_sync, run, station_id, user_id)
    return {"station": station_id, "run": run.pk if run else None,
            "status": run.status if run else "skipped"}


@shared_task(name="library.tasks.drive_sync_all", ignore_result=True)
def drive_sync_all() -> dict:
    """Beat: queue a sync for every station that watches a Drive folder."""
    from library.models import DriveFolder

    ids = list(DriveFolder.objects.filter(is_root=True).values_list("station_id", flat=True)
               .distinct())
    for station_id in ids:
        drive_sync.delay(station_id)
    return {"stations": ids}


def drive_sync_request(*, station, actor=None) -> None:
    """Ask for a sync now (admin button, API). Queued after the caller's transaction."""
    from django.db import transaction

    user_id = actor.pk if actor is not None and actor.is_authenticated else None
    transaction.on_commit(lambda: drive_sync.delay(station.pk, user_id))


@shared_task(name="library.tasks.gmail_import", ignore_result=True)
def gmail_import(station_id: int) -> dict:
    from library.gmail import gmail_import_run
    from radio.models import Station

    station = Station.objects.filter(pk=station_id).first()
    if station is None:
        return {"station": station_id, "status": "gone"}
    run = gmail_import_run(station=station)
    if run is not None and run.retry_after:
        _retry_later(gmail_import, run, station_id)
    return {"station": station_id, "status": run.status if run else "skipped"}


@shared_task(name="library.tasks.gmail_import_all", ignore_result=True)
def gmail_import_all() -> dict:
    """Beat: Gmail import for stations that can reach Google."""
    from django.conf import settings

    from radio.models import GoogleCredential, Station

    if settings.GOOGLE_SERVICE_ACCOUNT_FILE:
        ids = list(Station.objects.values_list("pk", flat=True))
    else:
        ids = list(GoogleCredential.objects.values_list("station_id", flat=True))
    for station_id in ids:
        gmail_import.delay(station_id)
    return {"stations": ids}


@shared_task(name="library.tasks.cache_clean", ignore_result=True, soft_time_limit=600,
             time_limit=660)
def cache_clean() -> dict:
    """Beat: remove cached audio no track refers to any more (old content of changed files)."""
    from library.services import library_cache_clean

    result = library_cache_clean()
    return {"removed": len(result["removed"]), "bytes": result["bytes"]}
