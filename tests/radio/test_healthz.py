"""/healthz tells the truth about each part, and Celery really runs through Redis."""

from __future__ import annotations

import signal

import pytest
from django.test import Client

from radio.tasks import ping
from tests.playback.test_playback_worker import _running_beat, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_celery_task_round_trips_through_the_real_broker(celery_worker):
    result = ping.delay("on air")
    assert result.get(timeout=30) == {"pong": "on air"}


def test_healthz_is_ok_when_everything_runs_and_names_a_stopped_playback_worker(
    station, spawn, celery_worker, settings
):
    from radio.models import Station

    Station.objects.exclude(pk=station.pk).delete()  # only the station under test
    worker = spawn("playback_worker", "--station", station.slug)
    wait_for(lambda: _running_beat(station.slug))
    client = Client()
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["down"] == []
    assert body["checks"]["playback"]["kol"]["ok"] is True
    assert body["checks"]["celery"]["ok"] is True

    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=15)
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["down"] == ["playback:kol"]
    assert body["checks"]["playback"]["kol"]["detail"] == "playback worker stopped"


def test_healthz_reports_a_killed_worker_once_its_heartbeat_is_stale(station, spawn, settings,
                                                                     celery_worker):
    worker = spawn("playback_worker", "--station", station.slug)
    wait_for(lambda: _running_beat(station.slug))
    worker.kill()
    worker.wait(timeout=10)
    client = Client()
    body = wait_for(lambda: "playback:kol" in (b := client.get("/healthz").json())["down"] and b,
                    timeout=settings.PLAYBACK_STALE_SECONDS + 10)
    assert body["status"] == "down"
    assert body["checks"]["playback"]["kol"]["detail"].startswith("no heartbeat for")


def test_healthz_without_a_celery_worker_is_503(station):
    # No celery_worker fixture in this test, but the session worker may be running:
    # stop reporting it by removing its heartbeat keys, as if it had died.
    from radio.celery_heartbeat import KEY_PREFIX, redis_client

    client = redis_client()
    for key in client.scan_iter(match=KEY_PREFIX + "*"):
        client.delete(key)
    body = Client().get("/healthz").json()
    assert "celery" in body["down"]
    assert body["checks"]["celery"]["detail"] == "no Celery worker heartbeat"


def test_healthz_token_is_required_when_configured(settings, db):
    settings.HEALTHZ_TOKEN = "s3cret"
    client = Client()
    assert client.get("/healthz").status_code == 401
    assert client.get("/healthz", headers={"Authorization": "Bearer s3cret"}).status_code in (200, 503)
