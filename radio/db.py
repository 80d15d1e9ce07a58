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
"""

from __future__ import annotations

from django.db.backends.signals import connection_created


def guard_session(cursor, *, idle_in_transaction: float) -> None:
    """Have the server end this session if it sits in a transaction longer than the limit."""
    cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                   [f"{int(idle_in_transaction * 1000)}ms"])


def guard_sessions(*, idle_in_transaction: float) -> None:
    """Guard every PostgreSQL connection this process opens from now on (SQLite: nothing to do)."""
    if idle_in_transaction <= 0:
        return

    def on_connect(sender, connection, **kwargs) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                guard_session(cursor, idle_in_transaction=idle_in_transaction)

    connection_created.connect(on_connect, weak=False, dispatch_uid="onair-guard-sessions")
