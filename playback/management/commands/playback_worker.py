"""`python manage.py playback_worker --station SLUG`: the station's on-air process.

One per station, guarded by a lease in the database (radio.services.lease_*):
a second worker for the same station exits with a message naming the first.
The loop is built from small steps that tests call one at a time (--oneshot).
SIGTERM and SIGINT stop it cleanly: the lease is released and clients are told.
"""

from __future__ import annotations

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from playback.services import playback_lease_key, playback_snapshot
from radio.models import Station
from radio.notify import MessageType, station_notify
from radio.services import (
    heartbeat_age,
    lease_acquire,
    lease_holder,
    lease_release,
    lease_renew,
    worker_identity,
)

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the playback worker of one station (exactly one per station)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--station", required=True, help="slug of the station to play")
        parser.add_argument("--oneshot", action="store_true",
                            help="claim, run one step, release and exit (for tests)")

    def handle(self, *args, station: str, oneshot: bool, **options) -> None:
        self.shutdown = False
        self.station = Station.objects.filter(slug=station).first()
        if self.station is None:
            raise CommandError(f"No station with slug {station!r}.")
        self.key = playback_lease_key(self.station)
        self.owner = worker_identity()
        self.claim()
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.stdout.write(f"Playback worker for station {self.station.slug} started ({self.owner}).")
        self.broadcast_status()
        try:
            if oneshot:
                self.handle_one_beat()
                return
            next_beat = 0.0
            while not self.shutdown:
                now = time.monotonic()
                if now >= next_beat:
                    if not self.handle_one_beat():
                        raise CommandError(
                            f"Lost the lease of station {self.station.slug} to another worker; "
                            "stopping so that only one plays."
                        )
                    next_beat = now + settings.PLAYBACK_HEARTBEAT_SECONDS
                time.sleep(min(0.1, settings.PLAYBACK_HEARTBEAT_SECONDS))
        finally:
            self.release()

    # --- steps -------------------------------------------------------------

    def claim(self) -> None:
        lease = lease_acquire(key=self.key, owner=self.owner, station=self.station,
                              stale_after=settings.PLAYBACK_STALE_SECONDS)
        if lease is not None:
            return
        holder = lease_holder(self.key)
        age = heartbeat_age(holder)
        message = (
            f"A playback worker for station {self.station.slug} is already running "
            f"({holder.owner if holder else 'unknown'}, last heartbeat {age or 0:.1f} s ago). "
            "Only one may play a station; stop it first."
        )
        logger.error("station=%s second playback worker refused: %s", self.station.slug, message)
        raise CommandError(message, returncode=3)

    def handle_one_beat(self) -> bool:
        """Renew the lease and heartbeat. False only when another worker holds the lease.

        A database outage is logged and tolerated: the broadcast must go on.
        """
        close_old_connections()
        try:
            return lease_renew(key=self.key, owner=self.owner)
        except DatabaseError:
            logger.warning("station=%s heartbeat not written: database unavailable",
                           self.station.slug, exc_info=True)
            return True

    def broadcast_status(self) -> None:
        try:
            data = playback_snapshot(self.station)
        except DatabaseError:
            logger.warning("station=%s status not read: database unavailable", self.station.slug)
            return
        station_notify(self.station.slug, MessageType.PLAYBACK_STATUS, data)

    def release(self) -> None:
        try:
            close_old_connections()
            lease_release(key=self.key, owner=self.owner)
        except DatabaseError:
            logger.warning("station=%s lease not released: database unavailable",
                           self.station.slug, exc_info=True)
        self.broadcast_status()
        self.stdout.write(f"Playback worker for station {self.station.slug} stopped.")

    def on_signal(self, signum, frame) -> None:
        logger.info("station=%s playback worker got signal %s: stopping", self.station.slug, signum)
        self.shutdown = True
