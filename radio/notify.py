"""The one way the rest of the code talks to a station's WebSocket clients.

Celery tasks, services and the playback worker call `station_notify`; they never
touch Channels details. The message `type` is also the consumer method that
forwards it (playback/consumers.py).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class MessageType(enum.StrEnum):
    PLAYBACK_STATUS = "playback_status"
    QUEUE_UPDATE = "queue_update"
    SCHEDULE_UPDATE = "schedule_update"
    LIBRARY_SYNC = "library_sync"
    NOTIFICATION = "notification"


def station_group(slug: str) -> str:
    return f"station.{slug}"


# A process whose main thread must never wait on Redis (the playback worker)
# installs a sender that queues messages for its own sending thread.
_background_sender: Callable[[Callable[[], bool]], None] | None = None


def send_in_background(sender: Callable[[Callable[[], bool]], None] | None) -> None:
    """Route this process's channel-layer sends through `sender` (None: send inline again)."""
    global _background_sender
    _background_sender = sender


def _send(send: Callable[[], bool]) -> bool:
    if _background_sender is not None:
        _background_sender(send)
        return True
    return send()


def station_notify(slug: str, message_type: MessageType, data: dict[str, Any]) -> bool:
    """Send one message to every client of the station. Returns False if Redis is down.

    Channel messages are only live fan-out: the database already holds the truth,
    so a lost message is logged and never raised into the caller's work.
    """
    return _send(lambda: station_notify_now(slug, message_type, data))


def channel_send(channel: str, message: dict[str, Any]) -> bool:
    """Send to one named channel (e.g. nudge a playback worker); False if Redis is down."""

    def send() -> bool:
        try:
            async_to_sync(get_channel_layer().send)(channel, message)
        except Exception:  # noqa: BLE001 - only a nudge: the receiver also polls
            logger.warning("channel=%s message not sent: channel layer unavailable", channel)
            return False
        return True

    return _send(send)


def station_notify_now(slug: str, message_type: MessageType, data: dict[str, Any]) -> bool:
    """`station_notify` in this thread, whatever the process's sender (for sending threads)."""
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(
            station_group(slug), {"type": str(message_type), "data": data}
        )
    except Exception:  # noqa: BLE001 - any layer failure only loses a live update
        logger.warning("station=%s %s not sent: channel layer unavailable", slug, message_type,
                       exc_info=True)
        return False
    return True


async def station_notify_async(slug: str, message_type: MessageType, data: dict[str, Any]) -> bool:
    layer = get_channel_layer()
    try:
        await layer.group_send(station_group(slug), {"type": str(message_type), "data": data})
    except Exception:  # noqa: BLE001
        logger.warning("station=%s %s not sent: channel layer unavailable", slug, message_type,
                       exc_info=True)
        return False
    return True
