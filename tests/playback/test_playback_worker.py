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
    for _ in range(3):  # every time, not just once
        wait_for(lambda: _running_beat(station.slug))
        worker.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert worker.wait(timeout=15) == 0
        assert time.monotonic() - sent < 2.0
        if _ < 2:
            worker = spawn("playback_worker", "--station", station.slug)
    beat = WorkerHeartbeat.objects.get(key=f"playback:{station.slug}")
    assert beat.owner == "" and beat.stopped_at is not None
    assert "stopped" in worker.read_out()


def test_second_worker_for_the_same_station_refuses_to_start(station, spawn):
    first = spawn("playback_worker", "--station", station.slug)
    wait_for(lambda: _running_beat(station.slug))
    second = spawn("playback_worker", "--station", station.slug)
    assert second.wait(timeout=30) == 3
    message = second.read_err()
    assert "already running" in message and station.slug in message
    assert first.poll() is None  # the first keeps playing


def test_workers_of_different_stations_run_side_by_side(station, other_station, spawn):
    spawn("playback_worker", "--station", station.slug)
    spawn("playback_worker", "--station", other_station.slug)
    wait_for(lambda: _running_beat(station.slug) and _running_beat(other_station.slug))


def test_a_killed_workers_lease_is_taken_over_at_once(station, spawn, process_env):
    # The stale age is far away: only the dead PID on this host frees the lease.
    process_env["PLAYBACK_STALE_SECONDS"] = "60"
    crashed = spawn("playback_worker", "--station", station.slug)
    wait_for(lambda: _running_beat(station.slug))
    crashed.kill()  # kill -9: no clean release, the lease row still names the dead process
    crashed.wait(timeout=10)
    old = _running_beat(station.slug)
    assert old.owner.split(":")[1] == str(crashed.pid)
    killed_at = time.monotonic()
    replacement = spawn("playback_worker", "--station", station.slug)
    beat = wait_for(lambda: (b := _running_beat(station.slug)) and b.owner != old.owner and b, timeout=10)
    assert time.monotonic() - killed_at < 5.0
    assert replacement.poll() is None
    assert beat.owner.split(":")[1] == str(replacement.pid)


def test_unknown_station_is_a_clear_error(db, spawn):
    worker = spawn("playback_worker", "--station", "nowhere")
    assert worker.wait(timeout=30) != 0
    assert "No station with slug 'nowhere'" in worker.read_err()
