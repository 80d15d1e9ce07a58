"""The playback worker's database side: every read and write, on a thread of its own.

The on-air thread never touches the database (a database that stops answering
would hold up the next track: 35 s of dead air measured, FACTS.md). It hands
writes to `Backstage.write` (ordered write-behind) and gets what it needs to
play as events on its own queue: the queue snapshot, the auto-DJ pool and
emergency list, operators' commands and the lease's fate. Tests run the same
code inline, one `turn()` at a time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection, connections

from playback import services
from playback.entry import Entry
from playback.models import QueueItem, Reason
from radio.models import Station
from radio.services import lease_renew

logger = logging.getLogger(__name__)

DB_ERRORS = (DatabaseError, InterfaceError)
MAX_WRITES = 10_000
POOL_REFRESH_SECONDS = 30.0
SCHEDULE_REFRESH_SECONDS = 5.0


@dataclass
class Job:
    run: Callable[[], Any]
    spool: dict[str, Any] | None = None  # an as-run row, kept on disk if the job cannot run before exit


def spool_path(slug: str) -> Path:
    return Path(settings.VAR_DIR) / f"playback-{slug}-spool.json"


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(type(value))


class Backstage:
    """Database work for one station's on-air thread; `post` puts events on that thread's queue."""

    def __init__(self, station: Station, *, key: str, owner: str, post: Callable[[tuple], None],
                 clock: Callable[[], float] = time.monotonic, threaded: bool = False) -> None:
        self.station, self.slug = station, station.slug
        self.key, self.owner = key, owner
        self.post = post
        self.clock = clock
        self.lock = threading.Lock()
        self.writes: deque[Job] = deque()
        self.position_job: Callable[[], Any] | None = None  # only the latest matters
        self.lease_status: dict[str, Any] = {}
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.want_commands = self.want_queue = self.want_pool = self.want_schedule = True
        self.last_beat = self.last_pool = self.last_schedule = -1e9
        self.schedule_known: dict[str, Any] = {}  # playback.schedule.Start by key
        self.seen_commands: deque[int] = deque(maxlen=500)
        self.db_down_since: float | None = None
        self.busy_since: float | None = None
        self._wrapper: Any = None
        self.thread: threading.Thread | None = None
        if threaded:
            self.thread = threading.Thread(target=self._run, name="backstage", daemon=True)
            self.thread.start()

    # --- called from the on-air thread (never blocks) ------------------------------------

    def write(self, fn: Callable[[], Any], *, spool: dict[str, Any] | None = None) -> None:
        with self.lock:
            if len(self.writes) >= MAX_WRITES:
                dropped = next((j for j in self.writes if j.spool is None), None)
                if dropped is not None:
                    self.writes.remove(dropped)
                    logger.error("station=%s write-behind full: a state update was dropped", self.slug)
            self.writes.append(Job(fn, spool))
        self.wake.set()

    def set_position(self, fn: Callable[[], Any]) -> None:
        with self.lock:
            self.position_job = fn

    def set_lease_status(self, status: dict[str, Any], *, beat_now: bool = False) -> None:
        """Set the given keys of the status the heartbeat carries (a None value removes its key)."""
        with self.lock:
            self.lease_status.update(status)
            self.lease_status = {k: v for k, v in self.lease_status.items() if v is not None}
            if beat_now:
                self.last_beat = -1e9
        if beat_now:
            self.wake.set()

    def nudge(self) -> None:
        """Something changed (a command, the queue, an item started): read again soon."""
        self.want_commands = self.want_queue = self.want_schedule = True
        self.wake.set()

    def request_pool(self) -> None:
        self.want_pool = True
        self.wake.set()

    # --- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(timeout=self.next_wait())
            self.wake.clear()
            if self.stopping.is_set():
                break
            try:
                self.turn()
            except DB_ERRORS as exc:
                self._failed(exc)
            except Exception:  # noqa: BLE001 - one failed job never ends the thread
                logger.exception("station=%s backstage turn failed", self.slug)
                self.stopping.wait(0.5)

    def next_wait(self) -> float:
        if self.db_down_since is not None:
            return 1.0  # retry the database every second
        return max(0.05, settings.PLAYBACK_HEARTBEAT_SECONDS - (self.clock() - self.last_beat))

    def due(self) -> bool:
        return self.wake.is_set() or self.clock() - self.last_beat >= settings.PLAYBACK_HEARTBEAT_SECONDS

    def turn(self) -> bool:
        """One round: writes first (in order), then the heartbeat and whatever was asked for."""
        self.wake.clear()
        if not self.flush():
            return False
        now = self.clock()
        if now - self.last_beat >= settings.PLAYBACK_HEARTBEAT_SECONDS:
            self.last_beat = now
            if not self.heartbeat():
                return False
            self.want_commands = self.want_queue = True  # a lost nudge loses nothing
        if self.want_queue:
            self.want_queue = False
            entries = self.db(self.read_queue)
            if entries is None:
                self.want_queue = True
                return False
            self.post(("queue", entries))
        if self.want_commands:
            self.want_commands = False
            commands = self.db(lambda: services.commands_take(
                station=self.station, max_age=settings.PLAYBACK_COMMAND_MAX_AGE))
            if commands is None:
                self.want_commands = True
                return False
            fresh = [c for c in commands if c.pk not in self.seen_commands]
            self.seen_commands.extend(c.pk for c in fresh)
            if fresh:
                self.post(("commands", fresh))
        if self.want_schedule or now - self.last_schedule >= SCHEDULE_REFRESH_SECONDS:
            schedule = self.db(self.read_schedule)
            if schedule is None:
                return False
            self.want_schedule, self.last_schedule = False, now
            self.post(("schedule", *schedule))
        if self.want_pool or now - self.last_pool >= POOL_REFRESH_SECONDS:
            pool = self.db(self.read_pool)
            if pool is None:
                return False
            self.want_pool, self.last_pool = False, now
            self.post(("pool", *pool))
        return True

    def flush(self) -> bool:
        """Run the waiting writes in order; stop at the first database error (they wait)."""
        while True:
            with self.lock:
                positional = not self.writes
                if positional:
                    if self.position_job is None:
                        break
                    job, self.position_job = Job(self.position_job), None
                else:
                    job = self.writes[0]
            try:
                self._run_db(job.run)
            except DB_ERRORS as exc:
                self._failed(exc)
                return False
            except Exception:  # noqa: BLE001 - a bad job is logged and dropped, never retried forever
                logger.exception("station=%s write-behind job failed and was dropped", self.slug)
            if not positional:
                with self.lock:
                    if self.writes and self.writes[0] is job:
                        self.writes.popleft()
        self._ok()
        return True

    def heartbeat(self) -> bool:
        if not connection.in_atomic_block:  # never inside a caller's (or a test's) transaction
            close_old_connections()
        with self.lock:
            status = dict(self.lease_status)
        renewed = self.db(lambda: lease_renew(key=self.key, owner=self.owner, status=status))
        if renewed is None:
            return False
        if renewed is False:
            self.post(("lease", False))
        return True

    def read_queue(self) -> list[Entry]:
        services.autodj_top_up(station=self.station)
        items = (QueueItem.objects.filter(station=self.station, status=QueueItem.Status.QUEUED)
                 .select_related("track").order_by("position", "id")[:20])
        return [Entry.from_track(item.track, reason=item.reason, item=item) for item in items]

    def read_pool(self) -> tuple[list[Entry], list[Entry]]:
        pool = [Entry.from_track(t, reason=Reason.AUTODJ, note=str(getattr(t, "autodj_note", "") or ""))
                for t in services.autodj_candidates(self.station, limit=200)]
        emergency = [Entry.from_track(t, reason=Reason.EMERGENCY)
                     for t in services.emergency_tracks(self.station)]
        return pool, emergency

    def read_schedule(self) -> tuple[list[Any], list[Entry], Any]:
        """Upcoming starts of the programme, the short items back-timing closes gaps with, and the
        station's soft-start settings."""
        from playback.programme import Settings
        from playback.schedule import read_starts

        starts = read_starts(self.station, known=self.schedule_known)
        keys = {s.key for s in starts}
        self.schedule_known = {k: v for k, v in self.schedule_known.items() if k in keys}
        shorts = [Entry.from_track(t, reason=Reason.AUTODJ, note="back-timing")
                  for t in services.short_items(self.station)]
        row = Station.objects.filter(pk=self.station.pk).values(
            "soft_start_tolerance", "fade_to_fit", "fade_to_fit_max", "loudness_normalise", "loudness_target",
            "true_peak_ceiling", "jingle_offset", "commercial_offset", "show_offset", "crossfade").first() or {}
        defaults = Settings()
        settings_ = Settings(tolerance=float(row.get("soft_start_tolerance", 10)),
                             fade_to_fit=bool(row.get("fade_to_fit")),
                             fade_to_fit_max=float(row.get("fade_to_fit_max", 15)),
                             normalise=bool(row.get("loudness_normalise", True)),
                             target_lufs=float(row.get("loudness_target", defaults.target_lufs)),
                             ceiling_dbtp=float(row.get("true_peak_ceiling", defaults.ceiling_dbtp)),
                             offsets={"jingle": float(row.get("jingle_offset", 0.0)),
                                      "commercial": float(row.get("commercial_offset", 0.0)),
                                      "show": float(row.get("show_offset", 0.0)),
                                      "newsflash": float(row.get("show_offset", 0.0))},
                             crossfade=float(row.get("crossfade", 0.0)))
        return starts, shorts, settings_

    def _run_db(self, fn: Callable[[], Any]) -> Any:
        """Run `fn`, noting when it started and on which socket, so `rescue` can end a hung query."""
        with self.lock:
            self.busy_since = time.monotonic()
            self._wrapper = connections["default"]  # this thread's own connection
        try:
            return fn()
        finally:
            with self.lock:
                self.busy_since = None

    def rescue(self, now: float | None = None) -> bool:
        """Called from the on-air thread: end a database call that has hung past the deadline.

        A server that stops answering without closing (a blackholed path) is covered by
        no driver time-out (FACTS.md); shutting the socket down makes the call fail, the
        outage is noted and the next attempt opens a new connection.
        """
        now = time.monotonic() if now is None else now
        busy = self.busy_since
        if busy is None or now - busy < settings.PLAYBACK_DB_DEADLINE or self.thread is None:
            return False
        with self.lock:
            self.busy_since = None  # once per hung call
        fd = self.socket_fd
        logger.error("station=%s database call hung for %.1f s: closing its connection", self.slug, now - busy)
        if fd is not None:
            try:
                sock = socket.socket(fileno=os.dup(fd))
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                logger.warning("station=%s hung database socket could not be shut down", self.slug,
                               exc_info=True)
        return True

    @property
    def socket_fd(self) -> int | None:
        """The backstage thread's database socket (its connection wrapper is thread-local)."""
        raw = getattr(self._wrapper, "connection", None)
        try:
            return raw.pgconn.socket if raw is not None else None
        except Exception:  # noqa: BLE001 - SQLite or a closed connection: nothing to rescue
            return None

    def db(self, fn: Callable[[], Any]) -> Any:
        """Run a read; on a database error note the outage and return None."""
        try:
            result = self._run_db(fn)
        except DB_ERRORS as exc:
            self._failed(exc)
            return None
        self._ok()
        return result

    def _failed(self, exc: Exception) -> None:
        if self.db_down_since is None:
            self.db_down_since = self.clock()
            logger.error("station=%s database unavailable, playing on from memory: %s", self.slug, exc)
        if not connection.in_atomic_block:
            try:
                connection.close()  # the next query reconnects
            except DB_ERRORS:
                pass

    def _ok(self) -> None:
        if self.db_down_since is not None:
            logger.warning("station=%s database back after %.1f s; %d writes waiting", self.slug,
                           self.clock() - self.db_down_since, len(self.writes))
            self.db_down_since = None

    # --- stopping ------------------------------------------------------------------------

    def stop(self, deadline: float) -> None:
        """Finish the writes before `deadline` (monotonic); keep unwritten as-run rows on disk."""
        if self.thread is not None:
            self.wake.set()
            while self.writes and time.monotonic() < deadline and self.db_down_since is None:
                time.sleep(0.02)
            self.stopping.set()
            self.wake.set()
            self.thread.join(max(0.0, deadline - time.monotonic()))
        else:
            self.flush()
        with self.lock:
            rows = [job.spool for job in self.writes if job.spool is not None]
        if rows:
            spool = spool_path(self.slug)
            try:
                previous = json.loads(spool.read_text()) if spool.exists() else []
                spool.write_text(json.dumps(previous + rows, default=_json_default))
                logger.warning("station=%s %d as-run rows kept in %s until the database answers",
                               self.slug, len(rows), spool)
            except OSError:
                logger.exception("station=%s as-run rows could not be kept on disk", self.slug)
