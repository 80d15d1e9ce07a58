"""A process's channel-layer traffic on one long-lived event loop, on the real Redis layer.

The bug this guards against (FACTS.md): `async_to_sync(layer.receive)` in a loop
cancels channels_redis's acknowledgement task, so one message came back 285
times in a second. Here one message must arrive exactly once, and an idle
listener must leave Redis idle (a blocking pop every few seconds, no storm).
"""

from __future__ import annotations

import threading
import time

import pytest
import redis
from channels.layers import channel_layers

from radio.notify import ChannelLoop, channel_send, send_in_background
from tests.servers import RedisServer


@pytest.fixture
def fresh_layer():
    channel_layers.backends.clear()  # a layer bound to no earlier test's event loop
    yield
    channel_layers.backends.clear()


@pytest.fixture
def private_redis(fresh_layer, settings):
    """A Redis of this test's own: the session's also serves the Celery worker, which is never idle."""
    server = RedisServer()
    url = server.start()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [url]}}}
    channel_layers.backends.clear()
    yield url
    channel_layers.backends.clear()
    server.stop()


def _commands_processed(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


def test_one_nudge_wakes_the_listener_exactly_once_and_redis_stays_idle(private_redis):
    client = redis.Redis.from_url(private_redis)
    channel = f"playback.test-{time.monotonic_ns()}"
    received: list[dict] = []
    arrived = threading.Event()

    def on_message(message: dict) -> None:
        received.append(message)
        arrived.set()

    loop = ChannelLoop(name="test-channels")
    try:
        loop.listen(channel, on_message)
        time.sleep(0.5)  # the listener is waiting in its blocking pop
        assert channel_send(channel, {"type": "nudge"})  # sent inline, like a web process
        assert arrived.wait(5)
        time.sleep(3.0)  # long enough for hundreds of repeats under the old pattern
        assert received == [{"type": "nudge"}]

        # Nothing sent: the listener costs Redis a blocking pop every few seconds, no polling.
        before = _commands_processed(client)
        time.sleep(5.0)
        idle_commands = _commands_processed(client) - before
        assert idle_commands <= 10, f"{idle_commands} Redis commands in 5 s with nothing sent"
        assert received == [{"type": "nudge"}]

        # Sends routed through the loop (as in the playback worker) arrive once each, in order.
        send_in_background(loop)
        for n in range(5):
            channel_send(channel, {"type": "nudge", "n": n})
        deadline = time.monotonic() + 5
        while len(received) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        assert [m.get("n") for m in received] == [None, 0, 1, 2, 3, 4]
    finally:
        send_in_background(None)
        loop.close()


def test_a_silent_redis_costs_dropped_messages_never_the_callers_time(fresh_layer, settings):
    import socket

    silent = socket.socket()  # takes connections, never answers: a blackholed host
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                              "socket_connect_timeout": 2, "socket_timeout": 10}]}}}
    loop = ChannelLoop(name="test-channels", max_pending=20, timeout=0.5)
    try:
        started = time.monotonic()
        results = [loop.submit(_never_answered) for _ in range(50)]
        assert time.monotonic() - started < 0.1  # the caller never waited
        assert results.count(True) == 20 and results.count(False) == 30  # bounded, the rest dropped
        deadline = time.monotonic() + 30
        while loop.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loop.pending == 0  # each gave up after its time-out (in order); the loop lives on
        done = threading.Event()

        async def mark() -> None:
            done.set()

        loop.submit(mark)
        assert done.wait(2)
    finally:
        loop.close()
        silent.close()


async def _never_answered() -> None:
    from channels.layers import get_channel_layer

    await get_channel_layer().send("playback.nowhere", {"type": "nudge"})
