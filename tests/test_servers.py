"""The test session's network fakes behave like the failures they stand for."""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from tests.servers import TcpProxy


def _port(env_var: str) -> int:
    return urlsplit(os.environ[env_var]).port


@pytest.fixture
def pg_proxy():
    proxy = TcpProxy(_port("DATABASE_URL"))
    yield proxy
    proxy.close()


@pytest.fixture
def redis_proxy():
    proxy = TcpProxy(_port("REDIS_URL"))
    yield proxy
    proxy.close()


def _redis(port: int, timeout: float) -> redis.Redis:
    # No retries: redis-py 6+ retries three times with backoff by default,
    # which would hide how long one attempt takes.
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry=None, retry_on_error=[])


def _pg_connect(port: int) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="onair", dbname="postgres",
                           connect_timeout=3, autocommit=True)


def _query_in_thread(conn: psycopg.Connection) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["rows"] = conn.execute("select 1").fetchall()
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever ended it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_postgres_query_through_a_blackholed_proxy_hangs_instead_of_failing(pg_proxy):
    conn = _pg_connect(pg_proxy.port)
    assert conn.execute("select 1").fetchall() == [(1,)]

    pg_proxy.blackhole()
    thread, outcome = _query_in_thread(conn)
    thread.join(2.0)
    assert thread.is_alive(), f"the query should still hang, it ended with {outcome}"
    assert not outcome

    # Only dropping the connection ends it, as on a real network.
    pg_proxy.cut()
    thread.join(5.0)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), psycopg.OperationalError)
    conn.close()


def test_a_new_postgres_connection_through_a_blackholed_proxy_is_accepted_but_never_answered(
        pg_proxy):
    pg_proxy.blackhole()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["conn"] = _pg_connect(pg_proxy.port)  # connect_timeout=3
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(2.0)
    assert thread.is_alive(), f"not refused, just silent; got {outcome}"
    thread.join(10.0)
    assert isinstance(outcome.get("error"), psycopg.OperationalError)


def test_restore_forwards_new_postgres_connections_but_blackholed_ones_stay_dead(pg_proxy):
    old = _pg_connect(pg_proxy.port)
    pg_proxy.blackhole()
    pg_proxy.restore()

    fresh = _pg_connect(pg_proxy.port)
    assert fresh.execute("select 1").fetchall() == [(1,)]
    fresh.close()

    thread, outcome = _query_in_thread(old)
    thread.join(1.0)
    assert thread.is_alive(), f"the blackholed connection should stay dead, got {outcome}"
    pg_proxy.cut()
    thread.join(5.0)
    old.close()


def test_a_redis_client_through_a_blackholed_proxy_times_out_on_its_socket_timeout(redis_proxy):
    client = _redis(redis_proxy.port, 1)
    assert client.ping() is True

    redis_proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert 0.9 <= time.monotonic() - started < 3

    # A fresh connection is accepted (no refusal) but never answered either.
    fresh = _redis(redis_proxy.port, 1)
    with pytest.raises(redis.TimeoutError):
        fresh.ping()

    redis_proxy.restore()
    again = _redis(redis_proxy.port, 1)
    assert again.ping() is True
    for c in (client, fresh, again):
        c.close()


def test_cut_refuses_at_once_where_blackhole_hangs(redis_proxy):
    client = _redis(redis_proxy.port, 5)
    assert client.ping() is True
    redis_proxy.cut()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - started < 2.0
    client.close()
