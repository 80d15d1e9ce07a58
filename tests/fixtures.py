"""Shared fixtures: stations, users with roles, API clients, real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import translation
from rest_framework.test import APIClient

from radio.models import Membership, Role, Station

ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "station", "other_station", "make_user", "api_client", "process_env", "spawn",
    "celery_worker",
]


@pytest.fixture
def station(db) -> Station:
    return Station.objects.create(name="Radio Kol", slug="kol", time_zone="Asia/Jerusalem")


@pytest.fixture
def other_station(db) -> Station:
    return Station.objects.create(name="Other FM", slug="other", time_zone="Europe/London")


@pytest.fixture
def make_user(db) -> Callable:
    counter = iter(range(1, 10_000))

    def make(role: Role | None = None, station: Station | None = None, **extra):
        User = get_user_model()
        user = User.objects.create_user(username=extra.pop("username", f"user{next(counter)}"),
                                        password="pw-Secret-123", **extra)
        if role is not None:
            Membership.objects.create(user=user, station=station, role=role)
        return user

    return make


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def process_env(tmp_path_factory) -> dict[str, str]:
    """Environment for a subprocess that must use this test's database and Redis.

    Its own var/ folder (the playback worker keeps its beacon and as-run spool there:
    another test's must never be read back), the session's media cache.
    """
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env["ONAIR_VAR_DIR"] = str(tmp_path_factory.mktemp("var"))
    env["ONAIR_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    base = env["DATABASE_URL"].rsplit("/", 1)[0]
    env["DATABASE_URL"] = f"{base}/{connection.settings_dict['NAME']}"
    env["DJANGO_SETTINGS_MODULE"] = "settings.test"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("ONAIR_PROCESS", None)  # set in this process by importing settings/asgi.py
    return env


class Spawned(subprocess.Popen):
    """A `manage.py` process whose output goes to files, as under supervisord (never a pipe
    that nobody reads: a full pipe stops a process at its next log line)."""

    out_path: Path
    err_path: Path

    def read_out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def read_err(self) -> str:
        return self.err_path.read_text(errors="replace")


@pytest.fixture
def spawn(process_env, tmp_path_factory) -> Iterator[Callable[..., Spawned]]:
    """Start `python manage.py …` subprocesses; all are stopped after the test."""
    started: list[Spawned] = []
    folder = tmp_path_factory.mktemp("spawned")

    def start(*args: str) -> Spawned:
        name = f"{len(started)}-{args[0]}"
        out_path, err_path = folder / f"{name}.out", folder / f"{name}.err"
        with out_path.open("w") as out, err_path.open("w") as err:
            process = Spawned([sys.executable, str(ROOT / "manage.py"), *args], env=process_env, cwd=ROOT,
                              stdout=out, stderr=err, text=True)
        process.out_path, process.err_path = out_path, err_path
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real Celery worker process consuming every queue through the test Redis.

    It uses the test database, so tasks that touch rows see what a test
    committed (use `django_db(transaction=True)` in such tests).
    """
    from django.db import connection

    from radio.celery_heartbeat import KEY_PREFIX, redis_client

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="settings.test", PYTHONUNBUFFERED="1")
    base = env["DATABASE_URL"].rsplit("/", 1)[0]
    env["DATABASE_URL"] = f"{base}/{connection.settings_dict['NAME']}"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "settings", "worker", "--pool", "solo",
         "-Q", "default,sync,analysis,notify", "--hostname", "tests@%h", "--loglevel", "WARNING",
         "--without-mingle", "--without-gossip"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    client = redis_client()
    deadline = time.monotonic() + 60
    while not any(client.scan_iter(match=KEY_PREFIX + "tests@*")):
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("celery worker did not start within 60 s")
        time.sleep(0.1)
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(autouse=True)
def _language_reset() -> Iterator[None]:
    """Each test starts in the default language: a page read in Hebrew (the test client runs the
    locale middleware in this thread) must not turn the next test's messages Hebrew."""
    yield
    translation.deactivate()
