"""The playback worker process: one per station, heartbeat, clean stop on SIGTERM."""

from __future__ import annotations

import signal
import time

import pytest

from radio.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within the time limit")


def _running_beat(slug: str) -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.filter(key=f"playback:{slug}").exclude(owner="").first()


def test_worker_beats_and_stops_cleanly_on_sigterm(station, spawn):
    worker = spawn("playback_worker", "--station", station.slug)
    beat = wait_for(lambda: _running_beat(station.slug))
    first_beat = beat.beat_at
    wait_for(lambda: _running_beat(station.slug).beat_at > first_beat)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    beat = WorkerHeartbeat.objects.get(key=f"playback:{station.slug}")
    assert beat.owner == "" and beat.stopped_at is not None
    assert "stopped" in worker.stdout.read()


def test_second_worker_for_the_same_station_refuses_to_start(station, spawn):
    first = spawn("playback_worker", "--station", station.slug)
    wait_for(lambda: _running_beat(station.slug))
    second = spawn("playback_worker", "--station", station.slug)
    assert second.wait(timeout=30) == 3
    message = second.stderr.read()
    assert "already running" in message and station.slug in message
    assert first.poll() is None  # the first keeps playing


def test_workers_of_different_stations_run_side_by_side(station, other_station, spawn):
    spawn("playback_worker", "--station", station.slug)
    spawn("playback_worker", "--station", other_station.slug)
    wait_for(lambda: _running_beat(station.slug) and _running_beat(other_station.slug))


def test_a_crashed_workers_lease_is_taken_over_once_stale(station, spawn, process_env):
    # Long enough that a new process surely starts inside it, even on a busy machine.
    stale = 10.0
    process_env["PLAYBACK_STALE_SECONDS"] = str(stale)
    crashed = spawn("playback_worker", "--station", station.slug)
    wait_for(lambda: _running_beat(station.slug))
    crashed.kill()  # no clean release: the lease stays held until it goes stale
    crashed.wait(timeout=10)
    old = _running_beat(station.slug)
    too_soon = spawn("playback_worker", "--station", station.slug)
    assert too_soon.wait(timeout=30) == 3  # the lease still looks alive
    assert time.time() - old.beat_at.timestamp() < stale
    time.sleep(max(0.0, stale - (time.time() - old.beat_at.timestamp())) + 0.5)
    replacement = spawn("playback_worker", "--station", station.slug)
    beat = wait_for(lambda: (b := _running_beat(station.slug)) and b.owner != old.owner and b)
    assert replacement.poll() is None
    assert beat.owner.split(":")[1] == str(replacement.pid)


def test_unknown_station_is_a_clear_error(db, spawn):
    worker = spawn("playback_worker", "--station", "nowhere")
    assert worker.wait(timeout=30) != 0
    assert "No station with slug 'nowhere'" in worker.stderr.read()
