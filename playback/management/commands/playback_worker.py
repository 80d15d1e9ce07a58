"""`python manage.py playback_worker --station SLUG`: the station's on-air process.

One per station, guarded by a lease in the database (radio.services.lease_*):
a second worker for the same station exits with a message naming the first.
It owns the station's only VLC instance; libvlc is called from this thread
only. The loop is `PlaybackWorker.step()` (playback/worker.py); `--oneshot`
runs a single step for tests. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections, connections

from playback.engine import Engine, OutputConfig
from playback.services import playback_lease_key, worker_channel
from playback.worker import PlaybackWorker
from radio.db import guard_sessions
from radio.logsink import detach_log_output
from radio.models import Station
from radio.notify import ChannelLoop, send_in_background
from radio.services import heartbeat_age, lease_acquire, lease_holder, lease_release, worker_identity

logger = logging.getLogger(__name__)


def output_config(station: Station, override: str | None = None) -> OutputConfig:
    kind = override or station.output
    if kind == Station.Output.ICECAST:
        password = os.environ.get("ICECAST_SOURCE_PASSWORD", "")
        if not password:
            raise CommandError("The station streams to Icecast: set ICECAST_SOURCE_PASSWORD "
                               "(and ICECAST_HOST, ICECAST_PORT).")
        host = os.environ.get("ICECAST_HOST", "127.0.0.1")
        port = os.environ.get("ICECAST_PORT", "8000")
        url = f"source:{password}@{host}:{port}/{station.icecast_mount}"
        return OutputConfig(kind="icecast", icecast_url=url, bitrate=station.icecast_bitrate)
    return OutputConfig(kind=kind, device=station.output_device)


class Command(BaseCommand):
    help = "Run the playback worker of one station (exactly one per station)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--station", required=True, help="slug of the station to play")
        parser.add_argument("--oneshot", action="store_true",
                            help="claim, run one step, release and exit (for tests)")
        parser.add_argument("--output", choices=[c for c, _ in Station.Output.choices],
                            help="override the station's audio output")

    def handle(self, *args, station: str, oneshot: bool, output: str | None = None, **options) -> None:
        self.shutdown = False
        # The on-air thread never waits on the log's reader (radio/logsink.py).
        log_writer = detach_log_output()
        # Before the first connection: a transaction of ours cut off mid-way (a hung socket the
        # backstage gives up on) must not hold the station's queue lock on the server for hours.
        guard_sessions(idle_in_transaction=settings.DB_IDLE_IN_TRANSACTION_SECONDS)
        self.station = Station.objects.filter(slug=station).first()
        if self.station is None:
            raise CommandError(f"No station with slug {station!r}.")
        config = output_config(self.station, output)
        self.key = playback_lease_key(self.station)
        self.owner = worker_identity()
        self.claim()
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        # `kill -USR2 <pid>`: every thread's stack to the log (stderr), the worker goes on.
        faulthandler.register(signal.SIGUSR2, all_threads=True)
        self.raise_priority()
        events: queue.Queue = queue.Queue()
        record_dir = Path(settings.PLAYBACK_RECORD_DIR) if settings.PLAYBACK_RECORD_DIR else None
        engine = Engine(config, events, record_dir=record_dir, name=self.station.slug)
        # One long-lived event loop carries every channel-layer send and receive of this
        # process (FACTS.md: never async_to_sync(layer.receive) in a loop).
        channels = ChannelLoop(name="channels")
        send_in_background(channels)
        worker = PlaybackWorker(self.station, engine, events, owner=self.owner, threaded=not oneshot,
                                beacon=True)
        channels.listen(worker_channel(self.station), lambda _message: worker.backstage.nudge())
        self.stdout.write(f"Playback worker for station {self.station.slug} started ({self.owner}, "
                          f"output {config.kind}).")
        self.stdout.flush()
        deadline = None
        try:
            worker.recover()
            worker.step(timeout=0.0)
            while not (oneshot or self.shutdown):
                worker.step(timeout=0.1)
                if worker.lost_lease:
                    raise CommandError(f"Lost the lease of station {self.station.slug} to another worker; "
                                       "stopping so that only one plays.")
        finally:
            # A clean stop within 2 s of SIGTERM, whatever the database and Redis are doing.
            deadline = time.monotonic() + 1.2
            worker.close(deadline=deadline)
            released = worker.backstage.db_down_since is None and self.release_lease(deadline + 0.4)
            send_in_background(None)
            channels.close(0.2)
            engine.release()
            if log_writer is not None:
                log_writer.close(0.3)
            self.stdout.write(f"Playback worker for station {self.station.slug} stopped"
                              f"{'' if released else ' (lease left to expire: database unavailable)'}.")
            self.stdout.flush()

    def raise_priority(self) -> None:
        """Ahead of web, Celery and the database for the CPU, as audio engines are run: a track
        change on a busy 2-core machine must not wait for a Celery import (a 38 ms gap seen)."""
        wanted = settings.PLAYBACK_NICE
        if wanted >= 0:
            return
        try:
            os.nice(wanted - os.nice(0))
        except OSError as exc:  # not root and no CAP_SYS_NICE: play on at normal priority
            logger.warning("station=%s playback worker runs at normal CPU priority (nice %d refused: %s)",
                           self.station.slug, wanted, exc)

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

    def release_lease(self, deadline: float) -> bool:
        """Release the lease from a thread of its own: a silent database cannot hold up the stop."""
        done = threading.Event()

        def release() -> None:
            try:
                close_old_connections()
                lease_release(key=self.key, owner=self.owner)
                done.set()
            except DatabaseError:
                logger.warning("station=%s lease not released: database unavailable", self.station.slug)
            finally:
                connections.close_all()

        threading.Thread(target=release, name="release", daemon=True).start()
        return done.wait(max(0.0, deadline - time.monotonic()))

    def on_signal(self, signum, frame) -> None:
        logger.info("station=%s playback worker got signal %s: stopping", self.station.slug, signum)
        self.shutdown = True


