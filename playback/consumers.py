"""The station feed: `/ws/stations/<slug>/`.

Thin by design: refuse anonymous sockets and non-members, join the station's
group, send a full snapshot, then forward group messages. Membership is checked
again (at most every MEMBERSHIP_RECHECK seconds) before forwarding, so a revoked
user stops receiving the station's feed.

Refusals accept the handshake and close at once with 4401 (not signed in) or 4403
(not a member): a browser cannot see the HTTP status of a refused handshake (it
reports 1006, as for a network failure, and a client would retry for ever), while
a close code tells it to stop and ask the user to sign in. Nothing is sent before
the close. A foreign Origin is refused at the handshake itself (radio/origin.py).
"""

from __future__ import annotations

import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.translation import gettext as _

from radio.notify import MessageType, station_group

logger = logging.getLogger(__name__)

MEMBERSHIP_RECHECK = 30.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


@database_sync_to_async
def _member_station(user, slug: str):
    from radio.models import Station
    from radio.services import role_of

    station = Station.objects.filter(slug=slug).first()
    if station is None or role_of(user, station) is None:
        return None
    return station


@database_sync_to_async
def _snapshot(station) -> dict:
    from playback.services import playback_snapshot

    return playback_snapshot(station)


class StationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        self.slug = self.scope["url_route"]["kwargs"]["station_slug"]
        if user is None or not user.is_authenticated:
            logger.info("station=%s websocket refused: anonymous", self.slug)
            await self._refuse(CLOSE_UNAUTHENTICATED, _("Sign in to follow this station."))
            return
        station = await _member_station(user, self.slug)
        if station is None:
            logger.info("station=%s websocket refused: user=%s not a member", self.slug, user.pk)
            await self._refuse(CLOSE_FORBIDDEN, _("You are not a member of this station."))
            return
        self.user = user
        self.checked_at = time.monotonic()
        self.group = station_group(self.slug)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": MessageType.PLAYBACK_STATUS.value,
                              "data": await _snapshot(station)})

    async def _refuse(self, code: int, reason: str) -> None:
        # Accepted first: a close before accepting is an HTTP 403, which a browser hides.
        await self.accept()
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        # A close frame's reason holds at most 123 bytes.
        await self.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))

    async def disconnect(self, code: int) -> None:
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        # The feed is read-only: commands go through the REST API, which checks roles.
        await self.send_json({"type": "error", "data": {"detail": "This socket is read-only."}})

    async def _forward(self, event: dict) -> None:
        if time.monotonic() - self.checked_at > MEMBERSHIP_RECHECK:
            if await _member_station(self.user, self.slug) is None:
                logger.info("station=%s websocket closed: user=%s lost access", self.slug,
                            self.user.pk)
                await self._close(CLOSE_FORBIDDEN, _("Your access to this station was revoked."))
                return
            self.checked_at = time.monotonic()
        await self.send_json({"type": event["type"], "data": event.get("data", {})})

    # One method per message type (radio.notify.MessageType).
    async def playback_status(self, event: dict) -> None:
        await self._forward(event)

    async def queue_update(self, event: dict) -> None:
        await self._forward(event)

    async def schedule_update(self, event: dict) -> None:
        await self._forward(event)

    async def library_sync(self, event: dict) -> None:
        await self._forward(event)

    async def notification(self, event: dict) -> None:
        await self._forward(event)
