"""The single-instance lease: a crashed holder on this host frees it at once.

A playback worker restarted by the supervisor after a crash must not wait out
the stale age of its dead predecessor's heartbeat; a live holder, or one on
another host whose processes we cannot see, keeps the lease until it stops beating.
"""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from radio.models import WorkerHeartbeat
from radio.services import lease_acquire, lease_renew

pytestmark = pytest.mark.django_db

HOUR = 3600.0


def _dead_pid() -> int:
    process = subprocess.Popen(["sleep", "60"])
    process.kill()
    process.wait()  # reaped: the PID no longer exists
    return process.pid


@pytest.fixture
def live_pid():
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


def test_lease_of_a_dead_process_on_this_host_is_taken_at_once(station):
    dead = f"{socket.gethostname()}:{_dead_pid()}:abcd1234"
    assert lease_acquire(key="playback:kol", owner=dead, stale_after=HOUR, station=station)

    lease = lease_acquire(key="playback:kol", owner="successor", stale_after=HOUR, station=station)

    assert lease is not None and lease.owner == "successor"
    assert lease_renew(key="playback:kol", owner=dead) is False  # the dead owner lost it


def test_lease_of_a_live_process_on_this_host_is_refused(station, live_pid):
    holder = f"{socket.gethostname()}:{live_pid}:abcd1234"
    assert lease_acquire(key="playback:kol", owner=holder, stale_after=HOUR, station=station)

    assert lease_acquire(key="playback:kol", owner="second", stale_after=HOUR, station=station) is None
    assert WorkerHeartbeat.objects.get(key="playback:kol").owner == holder


def test_lease_of_another_host_waits_for_the_stale_age(station):
    # The same PID number means nothing on another machine.
    holder = f"elsewhere.example:{_dead_pid()}:abcd1234"
    assert lease_acquire(key="playback:kol", owner=holder, stale_after=HOUR, station=station)
    assert lease_acquire(key="playback:kol", owner="second", stale_after=60, station=station) is None

    WorkerHeartbeat.objects.filter(key="playback:kol").update(
        beat_at=timezone.now() - timedelta(seconds=61))

    lease = lease_acquire(key="playback:kol", owner="second", stale_after=60, station=station)
    assert lease is not None and lease.owner == "second"


def test_earlier_life_of_our_own_pid_does_not_hold_the_lease(station):
    # A restarted container's worker often gets its predecessor's PID (e.g. 7 again).
    earlier = f"{socket.gethostname()}:{os.getpid()}:0ld0wner"
    assert lease_acquire(key="playback:kol", owner=earlier, stale_after=HOUR, station=station)

    lease = lease_acquire(key="playback:kol", owner="current", stale_after=HOUR, station=station)

    assert lease is not None and lease.owner == "current"


def test_owner_without_a_pid_waits_for_the_stale_age(station):
    assert lease_acquire(key="playback:kol", owner="w1", stale_after=HOUR, station=station)
    assert lease_acquire(key="playback:kol", owner="w2", stale_after=HOUR, station=station) is None
