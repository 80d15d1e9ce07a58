"""The web process borrows PostgreSQL connections from a bounded pool (settings/base.py, radio/db.py).

Under ASGI every request's sync code runs on a fresh thread; with persistent connections
(DB_CONN_MAX_AGE=60) each thread kept its own connection, never reused: one uvicorn process
held 121 and PostgreSQL refused the next ones ("too many clients"), so requests failed with 500.
Here the real uvicorn serves 40 concurrent clients through a database role that may open only
a few more connections than the pool's maximum: with the leak that limit is crossed within a
second; with the pool every request answers 200 and the web process never holds more than
DB_POOL_MAX sessions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper
from django.db.backends.signals import connection_created
from psycopg_pool import ConnectionPool
from rest_framework.authtoken.models import Token

from playback.services import queue_append
from radio.db import guard_sessions, pool_pressure
from radio.models import Role
from tests.asgi_server import uvicorn_server
from tests.fixtures import ROOT

POOL_MAX = 4
ROLE_LIMIT = POOL_MAX + 4  # the margin the old leak blew through
CLIENTS = 40
REQUESTS_EACH = 9  # 360 requests in all


@pytest.fixture
def limited_role():
    """A login role PostgreSQL lets open at most ROLE_LIMIT sessions (a low max_connections)."""
    name = f"onair_web_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{name}" LOGIN CONNECTION LIMIT {ROLE_LIMIT}')
        cursor.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{name}"')
        cursor.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{name}"')
    yield name
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [name])
        cursor.execute(f'DROP OWNED BY "{name}"')
        cursor.execute(f'DROP ROLE "{name}"')


def _as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))


def _web_sessions(role: str) -> int:
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
                            "AND application_name = 'onair-web'", [role]).fetchone()[0]


def _admin_dsn() -> str:
    params = connection.settings_dict
    return f"host={params['HOST']} port={params['PORT']} user={params['USER']} dbname={params['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_forty_concurrent_clients_get_every_answer_through_a_pool_of_four(
        process_env, station, make_user, limited_role, tmp_path):
    from library.models import Track
    from library.services import track_import_file
    from tests.library.audio import make_tone

    token = Token.objects.create(user=make_user(Role.EDITOR, station)).key
    track = track_import_file(station=station, path=make_tone(tmp_path / "t.mp3", seconds=1.0),
                              source=Track.Source.UPLOAD, original_name="Boker Tov.mp3")
    Track.objects.filter(pk=track.pk).update(analysis=Track.Analysis.OK)
    track.refresh_from_db()
    queue_append(station=station, track=track, actor=None)
    station.public_now_playing = True
    station.save(update_fields=["public_now_playing"])

    env = dict(process_env, DATABASE_URL=_as_role(process_env["DATABASE_URL"], limited_role),
               DB_POOL_MIN="1", DB_POOL_MAX=str(POOL_MAX), DB_POOL_TIMEOUT="10",
               # As in production: no persistent connections asked for, none leak.
               DB_CONN_MAX_AGE="60")
    base_paths = [f"/api/v1/stations/{station.slug}/now-playing", f"/api/v1/stations/{station.slug}/queue",
                  f"/api/v1/public/stations/{station.slug}/now-playing",
                  f"/api/v1/stations/{station.slug}/history"]
    statuses: Counter = Counter()
    failures: list[str] = []
    most_sessions = 0
    done = threading.Event()

    with uvicorn_server(env) as port:
        def client(index: int) -> None:
            for n in range(REQUESTS_EACH):
                path = base_paths[(index + n) % len(base_paths)]
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                                 headers={"Authorization": f"Token {token}",
                                                          "Accept": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        response.read()
                        statuses[response.status] += 1
                except urllib.error.HTTPError as exc:
                    statuses[exc.code] += 1
                    failures.append(f"{path}: {exc.code} {exc.read()[:200]!r}")
                except OSError as exc:
                    statuses["error"] += 1
                    failures.append(f"{path}: {exc}")

        def sample() -> None:
            nonlocal most_sessions
            while not done.is_set():
                most_sessions = max(most_sessions, _web_sessions(limited_role))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()

        try:  # 503 here: no Celery or playback worker runs in this test
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as response:
                health = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            health = json.loads(exc.read())
        after = _web_sessions(limited_role)

    assert failures == [], f"{len(failures)} failed of {sum(statuses.values())}: {failures[:5]}"
    assert statuses[200] == CLIENTS * REQUESTS_EACH, statuses
    assert 0 < most_sessions <= POOL_MAX, (most_sessions, elapsed)
    assert after <= POOL_MAX
    pool = health["checks"]["database"]["pool"]
    assert pool["pool_max"] == POOL_MAX and pool["pool_min"] == 1
    assert 1 <= pool["pool_size"] <= POOL_MAX
    assert pool["requests_waiting"] == 0
    assert health["checks"]["database"]["ok"] is True


def test_other_processes_keep_plain_connections():
    # The test process is not the web process: no pool, so the playback worker's backstage
    # (which shuts its own hung socket down) and Celery keep their own connections.
    assert settings.DB_POOL is False
    assert "pool" not in connection.settings_dict["OPTIONS"]
    assert connection.settings_dict["OPTIONS"]["application_name"] == "onair-manage"


@pytest.mark.parametrize(("argv", "process"), [(["manage.py", "playback_worker", "--station", "x"], "playback"),
                                               (["/usr/bin/celery", "-A", "settings", "worker"], "celery")])
def test_the_playback_worker_and_celery_never_pool_even_told_they_are_web(argv, process):
    """ONAIR_PROCESS=web inherited from a parent that imported settings/asgi.py once gave the
    playback worker the web's pool: after a database outage it waited on the pool for good."""
    code = (f"import sys; sys.argv = {argv!r}; import django; django.setup(); "
            "from django.conf import settings; from django.db import connection; "
            "print(settings.ONAIR_PROCESS, settings.DB_POOL, 'pool' in connection.settings_dict['OPTIONS'])")
    env = dict(os.environ, ONAIR_PROCESS="web", DJANGO_SETTINGS_MODULE="settings.base",
               DATABASE_URL="postgres://onair@127.0.0.1:5432/onair", SECRET_KEY="x" * 50,
               ALLOWED_HOSTS="localhost")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [process, "False", "False"]


@pytest.mark.django_db(transaction=True)
def test_the_idle_in_transaction_guard_is_set_once_per_pooled_session():
    params = {**connection.settings_dict, "CONN_MAX_AGE": 0,
              "OPTIONS": {**connection.settings_dict["OPTIONS"], "application_name": "onair-web",
                          "pool": {"min_size": 1, "max_size": 1, "timeout": 5}}}
    was_connected = any(key[0] == "onair-guard-sessions" for key, *_ in connection_created.receivers)
    guard_sessions(idle_in_transaction=7)
    wrapper = DatabaseWrapper(params, alias="pool-guard-test")
    try:
        seen = []
        for _ in range(3):  # three "requests", each checking the one pooled session out
            wrapper.force_debug_cursor = True
            with wrapper.cursor() as cursor:
                cursor.execute("SHOW idle_in_transaction_session_timeout")
                seen.append((cursor.fetchone()[0], wrapper.connection.info.backend_pid))
            guards = [q for q in wrapper.queries_log if "idle_in_transaction_session_timeout'" in q["sql"]]
            wrapper.close()  # back to the pool
        assert len({pid for _, pid in seen}) == 1  # the same session every time
        expected = f"{settings.DB_IDLE_IN_TRANSACTION_SECONDS:g}s" if was_connected else "7s"
        assert {value for value, _ in seen} == {expected}
        assert len(guards) <= 1  # set when the session opened, not at every checkout
    finally:
        wrapper.close_pool()
        if not was_connected:
            connection_created.disconnect(dispatch_uid="onair-guard-sessions")


def test_requests_that_waited_for_a_connection_are_logged_as_pressure():
    params = connection.settings_dict
    dsn = f"host={params['HOST']} port={params['PORT']} user={params['USER']} dbname=postgres"
    with ConnectionPool(dsn, min_size=1, max_size=1, timeout=5, open=True) as pool:
        pool.wait()  # its first connection open
        assert pool_pressure(pool.pop_stats()) is None  # nobody waited
        held = pool.getconn()
        waiter = threading.Thread(target=lambda: pool.putconn(pool.getconn()))
        waiter.start()
        time.sleep(0.3)
        pool.putconn(held)
        waiter.join()
        message = pool_pressure(pool.pop_stats())
    assert message is not None
    assert "1 of 2 requests waited" in message


@pytest.mark.django_db(transaction=True)
def test_a_request_that_finds_every_connection_busy_waits_a_bounded_time_then_answers_json_503(
        process_env, station, make_user):
    token = Token.objects.create(user=make_user(Role.VIEWER, station)).key
    env = dict(process_env, DB_POOL_MIN="1", DB_POOL_MAX="1", DB_POOL_TIMEOUT="1")
    queue = f"/api/v1/stations/{station.slug}/queue"
    answers: dict[str, tuple[int, dict]] = {}

    def get(name: str, port: int) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{queue}",
                                         headers={"Authorization": f"Token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answers[name] = (response.status, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            answers[name] = (exc.code, json.loads(exc.read()))

    with uvicorn_server(env) as port, psycopg.connect(_admin_dsn()) as locker:
        # Another session holds the queue: the first request waits on it, holding the one connection.
        locker.execute("LOCK TABLE playback_queueitem IN ACCESS EXCLUSIVE MODE")
        first = threading.Thread(target=get, args=("first", port))
        first.start()
        time.sleep(1.0)
        started = time.monotonic()
        get("second", port)
        waited = time.monotonic() - started
        locker.rollback()  # the lock goes: the first request finishes
        first.join()

    status, body = answers["second"]
    assert status == 503 and body["unavailable"] == "database", body
    assert 0.9 <= waited < 5  # DB_POOL_TIMEOUT, not PostgreSQL's "too many clients" nor a hang
    assert answers["first"][0] == 200
