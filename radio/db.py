"""A server-side guard on this process's PostgreSQL sessions: a transaction that goes silent is ended.

Queue changes hold the station's queue lock (playback.services._queue_lock) for the length of
their transaction. If the process holding it loses the database mid-transaction — a network
partition, a hung socket the playback worker's backstage gives up on, a process frozen — the
server keeps that backend "idle in transaction" and the lock held until TCP keepalives notice,
by default two hours later: every other writer of the station's queue, the playback worker
first, waits that long. `idle_in_transaction_session_timeout` makes PostgreSQL end such a
session and release its locks after a few seconds instead.

It is set per process, where transactions only ever wait on the database: the web process and
the playback worker. Not on Celery: a Drive sync holds a transaction across a page of Google calls.

The web process borrows its connections from a psycopg pool (settings/base.py): `pool_stats`
feeds /healthz and `watch_pool` logs when requests had to wait for one.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)


def guard_session(cursor, *, idle_in_transaction: float) -> None:
    """Have the server end this session if it sits in a transaction longer than the limit."""
    cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                   [f"{int(idle_in_transaction * 1000)}ms"])


def guard_sessions(*, idle_in_transaction: float) -> None:
    """Guard every PostgreSQL connection this process opens from now on (SQLite: nothing to do)."""
    if idle_in_transaction <= 0:
        return

    guarded: weakref.WeakSet = weakref.WeakSet()

    def on_connect(sender, connection, **kwargs) -> None:
        # With the web process's pool, `connection_created` fires at every checkout of a
        # pooled connection: the setting lasts the session, so it is sent once per session.
        if connection.vendor != "postgresql" or connection.connection in guarded:
            return
        with connection.cursor() as cursor:
            guard_session(cursor, idle_in_transaction=idle_in_transaction)
        guarded.add(connection.connection)

    connection_created.connect(on_connect, weak=False, dispatch_uid="onair-guard-sessions")


# --- The web process's connection pool ------------------------------------------------------

def pool_stats() -> dict[str, int] | None:
    """The pool's gauges now (psycopg_pool names), or None when this process has no pool."""
    from django.db import connection

    pool = getattr(connection, "pool", None)
    if pool is None:
        return None
    stats = pool.get_stats()
    return {key: stats.get(key, 0) for key in
            ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting")}


def pool_pressure(stats: dict[str, int]) -> str | None:
    """A warning line when requests had to wait for a connection (counters since the last look)."""
    queued, errors = stats.get("requests_queued", 0), stats.get("requests_errors", 0)
    if not queued and not errors and not stats.get("requests_waiting", 0):
        return None
    return (f"database pool under pressure: {queued} of {stats.get('requests_num', 0)} requests "
            f"waited for a connection ({stats.get('requests_wait_ms', 0)} ms in all), {errors} gave "
            f"up; {stats.get('requests_waiting', 0)} waiting now, {stats.get('pool_size', 0)}/"
            f"{stats.get('pool_max', 0)} connections open, {stats.get('pool_available', 0)} idle")


def watch_pool(every: float) -> threading.Thread | None:
    """Log pool pressure every `every` s while requests wait (a daemon thread; None: no pool)."""
    from django.db import connection

    if getattr(connection, "pool", None) is None or every <= 0:
        return None

    def run() -> None:
        while True:
            time.sleep(every)
            try:
                message = pool_pressure(connection.pool.pop_stats())
            except Exception:  # noqa: BLE001 - the watcher never dies of one bad look
                logger.exception("database pool: stats unavailable")
                continue
            if message:
                logger.warning("%s", message)

    thread = threading.Thread(target=run, name="db-pool-watch", daemon=True)
    thread.start()
    return thread
