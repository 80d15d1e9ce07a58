"""Nothing is lost to a Redis outage: a track whose analysis could not be queued is swept up.

The import runs in a real `manage.py import_folder` process whose Redis (the
Celery broker) is a dead port, so the real enqueue path fails as in an outage;
the sweep then queues it on the working broker and the real Celery worker
analyses it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from library.models import Track
from library.services import ANALYSIS_QUEUED_KEY, track_import_file
from library.tasks import analysis_sweep
from settings.celery import app
from tests.fixtures import ROOT
from tests.library.audio import make_tone
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _age(track: Track, seconds: float = 180) -> None:
    # update() leaves auto_now alone, so the row looks as old as we say.
    Track.objects.filter(pk=track.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def _analysed(track: Track, timeout: float = 30) -> Track:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        track.refresh_from_db()
        if track.analysis != Track.Analysis.PENDING:
            break
        time.sleep(0.2)
    return track


def test_a_track_imported_while_the_broker_is_down_is_analysed_by_the_sweep(
        celery_worker, station, tmp_path, process_env):
    make_tone(tmp_path / "Music" / "outage.mp3", seconds=2.0, lead_silence=0.5, title="Outage")
    env = dict(process_env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nobody listens

    imported = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "import_folder", str(tmp_path / "Music"),
         "--station", station.slug],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert imported.returncode == 0, imported.stderr
    assert "imported 1" in imported.stdout
    assert "analysis not queued" in imported.stderr and "sweep" in imported.stderr
    track = Track.objects.get(station=station, title="Outage")
    time.sleep(1.0)  # had anything been queued, the worker would be on it by now
    track.refresh_from_db()
    assert track.analysis == Track.Analysis.PENDING and not track.is_playable

    # A fresh track is left to its own enqueue; one pending for minutes is queued.
    assert track.pk not in analysis_sweep()["queued"]
    _age(track)
    assert analysis_sweep()["queued"] == [track.pk]

    track = _analysed(track)
    assert track.analysis == Track.Analysis.OK, track.analysis_error
    assert track.cue_in == pytest.approx(0.5, abs=0.1)
    assert track.is_playable
    assert analysis_sweep()["queued"] == []


def test_the_sweep_does_not_queue_a_track_twice_while_its_analysis_waits(
        celery_worker, station, tmp_path):
    track = track_import_file(station=station, path=make_tone(tmp_path / "queued.mp3"),
                              source=Track.Source.UPLOAD, original_name="queued.mp3")
    assert _analysed(track).analysis == Track.Analysis.OK
    # As if its message still waited behind a backlog: pending, old, and marked queued.
    Track.objects.filter(pk=track.pk).update(analysis=Track.Analysis.PENDING)
    _age(track)

    assert analysis_sweep()["queued"] == []

    # Once the marker has expired the message is presumed lost: queued again, and a
    # second analysis of the same file is harmless.
    cache.delete(ANALYSIS_QUEUED_KEY.format(track.pk))
    assert analysis_sweep()["queued"] == [track.pk]
    assert _analysed(track).analysis == Track.Analysis.OK
    assert track.is_playable


def test_the_sweep_leaves_tracks_without_a_cached_file_and_missing_tracks_alone(station, tmp_path):
    with_file = track_import_file(station=station, path=make_tone(tmp_path / "a.mp3"),
                                  source=Track.Source.UPLOAD, original_name="a.mp3")
    Track.objects.filter(pk=with_file.pk).update(missing_since=timezone.now())
    no_file = Track.objects.create(station=station, title="Not downloaded yet",
                                   source=Track.Source.DRIVE, source_id="drive-1", checksum="abc")
    for track in (with_file, no_file):
        _age(track)
    cache.delete(ANALYSIS_QUEUED_KEY.format(with_file.pk))

    assert analysis_sweep()["queued"] == []


def test_the_sweep_runs_every_minute_on_the_default_queue_and_expires_before_the_next():
    entry = app.conf.beat_schedule["analysis-sweep"]
    assert entry["task"] == "library.tasks.analysis_sweep"
    assert entry["schedule"] == 60.0
    assert 0 < entry["options"]["expires"] < 60.0
    assert app.amqp.router.route({}, "library.tasks.analysis_sweep")["queue"].name == "default"
