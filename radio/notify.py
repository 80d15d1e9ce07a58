"""The one way the rest of the code talks to a station's WebSocket clients.

Celery tasks, services and the playback worker call `station_notify`; they never
touch Channels details. The message `type` is also the consumer method that
forwards it (playback/consumers.py).

A message is encoded to JSON once, here, where it is made: the group message carries
the client's text (`text`) besides its `data`, and each socket sends that text as it is
(1,000 sockets: one `json.dumps`, not 1,000).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

from radio.logsink import Throttled

logger = logging.getLogger(__name__)
# Redis away: every send fails the same way; an outage is a few log lines, not hundreds.
_trouble = Throttled(logger)


class MessageType(enum.StrEnum):
    PLAYBACK_STATUS = "playback_status"
    QUEUE_UPDATE = "queue_update"
    SCHEDULE_UPDATE = "schedule_update"
    LIBRARY_SYNC = "library_sync"
    NOTIFICATION = "notification"


def station_group(slug: str) -> str:
    return f"station.{slug}"


def user_group(user_id: int) -> str:
    """Every open station socket of one user: told when that user's access may have changed."""
    return f"user.{user_id}"


# Not a client message: the consumers of the user's sockets check their access again.
ACCESS_CHANGED = "access.changed"


def message_text(message_type: MessageType | str, data: dict[str, Any]) -> str:
    """The client's JSON text of a message (`{"type", "data"}`), encoded once for every socket."""
    return json.dumps({"type": str(message_type), "data": data}, separators=(",", ":"))


def group_message(message_type: MessageType | str, data: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer message for a station group: `data` for server code, `text` for sockets."""
    return {"type": str(message_type), "data": data, "text": message_text(message_type, data)}


class ChannelLoop:
    """One long-lived event loop, on its own thread, for all of a process's channel-layer traffic.

    Never `async_to_sync(layer.receive)` in a loop (FACTS.md): channels_redis
    acknowledges a received message in a background task that a short-lived loop
    cancels, so the same message comes back again and again. Here every receive
    and send is awaited on this one loop. Callers never wait: `submit` queues a
    send (at most `max_pending` in flight; each gives up after `timeout` s, so a
    Redis that stops answering costs messages, never the caller's time), `latest`
    keeps only the newest of a kind (status), `listen` hands each message of a
    channel to a callback.
    """

    def __init__(self, *, name: str = "channels", max_pending: int = 500, timeout: float = 5.0,
                 max_age: float = 15.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.max_pending, self.timeout, self.max_age = max_pending, timeout, max_age
        self.dropped = 0
        self.pending = 0
        self.jobs: deque[tuple[float, Callable[[], Awaitable[Any]]]] = deque()
        self.draining = False
        self.lock = threading.Lock()
        self.latest_jobs: dict[str, Callable[[], Awaitable[Any]]] = {}
        self.latest_running: set[str] = set()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, make: Callable[[], Awaitable[Any]]) -> bool:
        """Queue `make()` for the loop, sent in order; False (and logged) if too many wait already."""
        with self.lock:
            if self.pending >= self.max_pending:
                _trouble.warning("channel loop: %d sends waiting, one dropped (Redis slow or away)",
                                 self.pending, exc_info=False)
                return False
            self.pending += 1
            self.jobs.append((time.monotonic(), make))
            start = not self.draining
            self.draining = True
        if start:
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._drain()))
        return True

    async def _drain(self) -> None:
        while True:
            with self.lock:
                if not self.jobs:
                    self.draining = False
                    return
                queued_at, make = self.jobs.popleft()
            try:
                if time.monotonic() - queued_at > self.max_age:
                    self.dropped += 1  # a live update that old is no use; a nudge is only a nudge
                    if self.dropped % 50 == 1:
                        logger.warning("channel loop: %d stale sends dropped (Redis was away)", self.dropped)
                    continue
                await asyncio.wait_for(make(), self.timeout)
            except Exception:  # noqa: BLE001 - one lost live update, never the loop
                _trouble.warning("channel loop: a send failed or timed out")
                self.reset_layer()
            finally:
                with self.lock:
                    self.pending -= 1

    def latest(self, key: str, make: Callable[[], Awaitable[Any]]) -> None:
        """Send the newest `make` of this key; older ones not yet sent are replaced."""
        with self.lock:
            self.latest_jobs[key] = make
            if key in self.latest_running:
                return
            self.latest_running.add(key)
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._drain_latest(key)))

    async def _drain_latest(self, key: str) -> None:
        while True:
            with self.lock:
                make = self.latest_jobs.pop(key, None)
                if make is None:
                    self.latest_running.discard(key)
                    return
            try:
                await asyncio.wait_for(make(), self.timeout)
            except Exception:  # noqa: BLE001
                _trouble.warning("channel loop: %s not sent", key)
                self.reset_layer()

    def listen(self, channel: str, on_message: Callable[[dict[str, Any]], None]) -> None:
        """Receive every message of `channel` for as long as the loop runs (each exactly once)."""

        async def receive_forever() -> None:
            while True:
                try:
                    message = await get_channel_layer().receive(channel)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - Redis away: the receiver also polls
                    _trouble.warning("channel=%s receive failed; retrying in 1 s", channel)
                    self.reset_layer()
                    await asyncio.sleep(1.0)
                    continue
                try:
                    on_message(message)
                except Exception:  # noqa: BLE001
                    logger.exception("channel=%s message handler failed", channel)

        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(receive_forever()))

    def reset_layer(self) -> None:
        """Forget this process's layer (and its pooled connections): after a time-out a
        connection may be one that a silent network will never answer again."""
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)

    def close(self, timeout: float = 0.5) -> None:
        """Cancel what is left and stop the loop; never waits more than `timeout`."""

        def stop() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.call_later(0.05, self.loop.stop)

        if self.loop.is_running():
            self.loop.call_soon_threadsafe(stop)
        self.thread.join(timeout)


# A process whose main thread must never wait on Redis (the playback worker)
# routes its sends through its channel loop.
_background_loop: ChannelLoop | None = None


def send_in_background(loop: ChannelLoop | None) -> None:
    """Route this process's channel-layer sends through `loop` (None: send inline again)."""
    global _background_loop
    _background_loop = loop


def station_notify(slug: str, message_type: MessageType, data: dict[str, Any]) -> bool:
    """Send one message to every client of the station. Returns False if Redis is down.

    Channel messages are only live fan-out: the database already holds the truth,
    so a lost message is logged and never raised into the caller's work.
    """
    if _background_loop is not None:
        # Only the newest status, and the newest whole queue, matter: older ones not yet sent are
        # replaced. Encoding happens on the loop's thread, and only for what is sent.
        if message_type in (MessageType.PLAYBACK_STATUS, MessageType.QUEUE_UPDATE):
            _background_loop.latest(f"{message_type}:{slug}",
                                    lambda: station_notify_async(slug, message_type, data))
            return True
        return _background_loop.submit(lambda: station_notify_async(slug, message_type, data))
    return station_notify_now(slug, message_type, data)


async def channel_send_async(channel: str, message: dict[str, Any]) -> bool:
    try:
        await get_channel_layer().send(channel, message)
    except Exception:  # noqa: BLE001 - only a nudge: the receiver also polls
        _trouble.warning("channel=%s message not sent: channel layer unavailable", channel)
        return False
    return True


def channel_send(channel: str, message: dict[str, Any]) -> bool:
    """Send to one named channel (e.g. nudge a playback worker); False if Redis is down."""
    if _background_loop is not None:
        return _background_loop.submit(lambda: channel_send_async(channel, message))
    try:
        return async_to_sync(channel_send_async)(channel, message)
    except Exception:  # noqa: BLE001 - e.g. called inside a running event loop: only a nudge is lost
        _trouble.warning("channel=%s message not sent: channel layer unavailable here", channel)
        return False


def station_notify_now(slug: str, message_type: MessageType, data: dict[str, Any]) -> bool:
    """`station_notify` in this thread, whatever the process's sender (for sending threads)."""
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(station_group(slug), group_message(message_type, data))
    except Exception:  # noqa: BLE001 - any layer failure only loses a live update
        _trouble.warning("station=%s %s not sent: channel layer unavailable", slug, message_type)
        return False
    return True


async def station_notify_async(slug: str, message_type: MessageType, data: dict[str, Any]) -> bool:
    layer = get_channel_layer()
    try:
        await layer.group_send(station_group(slug), group_message(message_type, data))
    except Exception:  # noqa: BLE001
        _trouble.warning("station=%s %s not sent: channel layer unavailable", slug, message_type)
        return False
    return True


def user_access_changed(user_id: int) -> bool:
    """Tell the user's open sockets to check their access now (a membership or the account
    changed). Only that user's sockets hear it: no fan-out to the station. False if Redis is down
    (the sockets still check on their own, every MEMBERSHIP_RECHECK seconds or so)."""
    return channel_group_send(user_group(user_id), {"type": ACCESS_CHANGED})


def channel_group_send(group: str, message: dict[str, Any]) -> bool:
    if _background_loop is not None:
        return _background_loop.submit(lambda: _group_send_async(group, message))
    try:
        return async_to_sync(_group_send_async)(group, message)
    except Exception:  # noqa: BLE001 - e.g. called inside a running event loop: the socket polls too
        _trouble.warning("group=%s message not sent: channel layer unavailable here", group)
        return False


async def _group_send_async(group: str, message: dict[str, Any]) -> bool:
    try:
        await get_channel_layer().group_send(group, message)
    except Exception:  # noqa: BLE001
        _trouble.warning("group=%s message not sent: channel layer unavailable", group)
        return False
    return True
