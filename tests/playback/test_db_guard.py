"""A session that loses the database inside a transaction no longer holds the station's queue lock
for hours: PostgreSQL ends it after DB_IDLE_IN_TRANSACTION_SECONDS (radio/db.py).

The lost client is a real PostgreSQL session behind a TcpProxy that goes silent (blackhole): the
server still sees an open connection, idle in a transaction that holds the lock, exactly as after
a network partition or a socket the playback worker's backstage gave up on.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from playback import services
from radio.db import guard_session
from tests.servers import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


def _lost_session_holding_the_queue_lock(station, proxy: TcpProxy, *, guard: float | None):
    params = connection.get_connection_params()
    params.update(host="127.0.0.1", port=proxy.port)
    params.pop("cursor_factory", None)
    params.pop("context", None)
    lost = psycopg.connect(**{k: v for k, v in params.items() if k in
                              ("dbname", "user", "password", "host", "port")})
    if guard is not None:
        guard_session(lost.cursor(), idle_in_transaction=guard)
        lost.commit()
    lost.execute("SELECT id FROM radio_station WHERE id = %s FOR NO KEY UPDATE", [station.pk])
    proxy.blackhole()  # the client goes silent inside its transaction; nothing is closed
    return lost


def _append_waiting_at_most(station, track, seconds: float):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}ms"])
        return services.queue_append(station=station, track=track)


def test_the_lock_of_a_lost_guarded_session_is_released_within_the_limit(station, make_playable):
    track = make_playable("Shalom")
    proxy = TcpProxy(urlsplit(f"//{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}").port)
    try:
        _lost_session_holding_the_queue_lock(station, proxy, guard=2.0)
        started = time.monotonic()
        item = _append_waiting_at_most(station, track, 15)
        assert item.pk and time.monotonic() - started < 6
    finally:
        proxy.close()


def test_without_the_guard_the_lost_session_holds_the_lock(station, make_playable):
    """The control: what every queue writer met before the guard (here cut short by lock_timeout)."""
    track = make_playable("Shalom")
    proxy = TcpProxy(urlsplit(f"//{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}").port)
    try:
        _lost_session_holding_the_queue_lock(station, proxy, guard=None)
        with pytest.raises(OperationalError, match="lock timeout"):
            _append_waiting_at_most(station, track, 4)
    finally:
        proxy.close()
