"""The station feed: `/ws/stations/<slug>/`.

Thin by design: refuse anonymous sockets and non-members, join the station's
group, send a full snapshot, then forward group messages.

Forwarding costs one send per socket and nothing else: the sender encoded the
message once (`radio.notify.group_message` puts the client's JSON `text` in the
group message), and the socket sends that text as it is. A message without
`text` (an older sender) is encoded once per process: the channel layer hands
the same message dict to every socket of the process, and the first one keeps
the encoding on it.

Access is checked again, never in a burst: each socket also joins its user's
group (`radio.notify.user_group`), where a membership or account change is
announced (`access.changed`, radio/signals.py) so that only that user's sockets
look again, at once; and as a safety net each socket looks again on its own
schedule (`recheck_delay`: the first at a random point of the period, then every
period ± half), so 1,000 sockets spread their queries over the period.

Refusals accept the handshake and close at once with 4401 (not signed in) or 4403
(not a member): a browser cannot see the HTTP status of a refused handshake (it
reports 1006, as for a network failure, and a client would retry for ever), while
a close code tells it to stop and ask the user to sign in. Nothing is sent before
the close. A foreign Origin is refused at the handshake itself (radio/origin.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.translation import gettext as _

from radio.notify import MessageType, station_group, user_group

logger = logging.getLogger(__name__)

# The safety net: an access change is announced at once (`access.changed`); this only
# catches what no signal reports (e.g. a row changed with a bulk UPDATE).
MEMBERSHIP_RECHECK = 300.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
FORWARDED = frozenset(str(t) for t in MessageType)


def recheck_delay(first: bool, period: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds until a socket checks its access again (`period`: MEMBERSHIP_RECHECK).

    The first check falls anywhere in the first period (sockets opened together, e.g.
    after a web restart, do not check together), then every period ± half of it.
    """
    period = MEMBERSHIP_RECHECK if period is None else period
    rng = rng or random
    return rng.uniform(0.0, period) if first else rng.uniform(0.5 * period, 1.5 * period)


@database_sync_to_async
def _member_station(user, slug: str):
    from radio.models import Station
    from radio.services import role_of

    station = Station.objects.filter(slug=slug).first()
    if station is None or role_of(user, station) is None:
        return None
    return station


@database_sync_to_async
def _still_member(user_id: int, station) -> bool:
    """Whether the user (read again: deactivated, no longer a superuser…) still has a role."""
    from django.contrib.auth import get_user_model

    from radio.services import role_of

    user = get_user_model().objects.filter(pk=user_id).first()
    return user is not None and role_of(user, station) is not None


@database_sync_to_async
def _snapshot(station) -> dict:
    from playback.services import playback_snapshot

    return playback_snapshot(station)


class StationConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: tuple[str, ...] = ()
    revoked = False
    rechecker: asyncio.Task | None = None

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
        self.user, self.station = user, station
        self.groups_joined = (station_group(self.slug), user_group(user.pk))
        await self._join()
        await self.accept()
        await self.send_json({"type": MessageType.PLAYBACK_STATUS.value,
                              "data": await _snapshot(station)})
        self.rechecker = asyncio.ensure_future(self._recheck_forever())

    async def _join(self) -> None:
        # Also renews the membership: channels_redis forgets a group member after a day.
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _refuse(self, code: int, reason: str) -> None:
        # Accepted first: a close before accepting is an HTTP 403, which a browser hides.
        await self.accept()
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        # A close frame's reason holds at most 123 bytes.
        await self.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))

    async def disconnect(self, code: int) -> None:
        if self.rechecker is not None:
            self.rechecker.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        # The feed is read-only: commands go through the REST API, which checks roles.
        await self.send_json({"type": "error", "data": {"detail": "This socket is read-only."}})

    async def _recheck(self) -> bool:
        """Check access again; close with 4403 when it is gone. True while the socket may stay."""
        if self.revoked:
            return False
        if await _still_member(self.user.pk, self.station):
            return True
        self.revoked = True  # nothing more is forwarded, whatever is already on its way
        logger.info("station=%s websocket closed: user=%s lost access", self.slug, self.user.pk)
        await self._close(CLOSE_FORBIDDEN, _("Your access to this station was revoked."))
        return False

    async def _recheck_forever(self) -> None:
        first = True
        while True:
            await asyncio.sleep(recheck_delay(first))
            first = False
            try:
                if not await self._recheck():
                    return
                await self._join()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - database or Redis away: the next round tries again
                logger.warning("station=%s user=%s access recheck failed", self.slug, self.user.pk,
                               exc_info=True)

    async def access_changed(self, event: dict) -> None:
        """`access.changed` on the user's group: a membership or the account changed."""
        await self._recheck()

    async def dispatch(self, message: dict) -> None:
        # Forwarding touches no database: skip Channels' close_old_connections() before each
        # handler, a hop to the one thread-sensitive sync thread per message and socket (1,000
        # sockets queued behind it: most of a change's fan-out time). Handlers that use the
        # database go through database_sync_to_async, which closes old connections itself.
        if message.get("type") in FORWARDED:
            await self._forward(message)
            return
        await super().dispatch(message)

    async def _forward(self, event: dict) -> None:
        if self.revoked:
            return
        text = event.get("text")
        if text is None:
            text = event["text"] = json.dumps({"type": event["type"], "data": event.get("data", {})})
        await self.send(text_data=text)

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
