"""The watchdog tells operators once per outage when a playback worker stops beating."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from radio.models import Notification, Station
from radio.services import lease_acquire, lease_release
from radio.tasks import playback_watchdog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


def test_down_worker_raises_one_notification_per_outage(station):
    Station.objects.exclude(pk=station.pk).delete()
    assert playback_watchdog() == {"alerted": ["kol"]}
    assert playback_watchdog() == {"alerted": []}  # still down: no repeat
    alert = Notification.objects.get(station=station)
    assert alert.level == "error" and alert.source == "watchdog"
    assert "never started" in alert.message

    lease_acquire(key="playback:kol", owner="w1", stale_after=2, station=station)
    assert playback_watchdog() == {"alerted": []}  # back up
    lease_release(key="playback:kol", owner="w1")
    assert playback_watchdog() == {"alerted": ["kol"]}  # a new outage
    assert Notification.objects.filter(station=station).count() == 2


def test_alert_is_written_in_the_station_language(station):
    Station.objects.exclude(pk=station.pk).delete()
    station.language = "he"
    station.save()
    playback_watchdog()
    assert Notification.objects.get().message.startswith("תהליך השידור אינו פועל")
