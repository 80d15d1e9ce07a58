"""The playback worker: small steps around the VLC engine, run from one thread.

`PlaybackWorker.step()` is one turn of the loop; tests call the steps one at a
time. The database is the source of truth, but the broadcast never waits for
it: every write goes through an ordered write-behind list (`self.pending`) that
is flushed whenever the database answers, and what plays next is kept in memory
(`self.upcoming`, the auto-DJ pool and the emergency list), so a PostgreSQL or
Redis outage only delays the as-run log and live status.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from library import storage
from library.models import Track
from playback import services
from playback.engine import Engine
from playback.models import PlayerCommand, PlayerState, PlayLog, QueueItem, Reason
from radio.models import Notification, Station
from radio.notify import MessageType, station_notify_now
from radio.services import lease_renew, notification_post

logger = logging.getLogger(__name__)

DB_ERRORS = (DatabaseError, InterfaceError)
FADE_MS = 300
FAILED_IF_ENDED_BEFORE = 0.5  # seconds played: a "completed" item this short failed to decode


@dataclass
class Entry:
    """Something that can go on air, with everything needed to play it offline."""

    track_id: int
    title: str
    artist: str
    kind: str
    path: Path
    cue_in: float
    cue_out: float | None
    duration: float | None
    reason: str
    queue_item_id: int | None = None
    requested_by_id: int | None = None
    note: str = ""

    @classmethod
    def from_track(cls, track: Track, *, reason: str, item: QueueItem | None = None) -> Entry:
        return cls(track_id=track.pk, title=track.title, artist=track.artist, kind=track.kind,
                   path=storage.absolute(track.file) if track.file else Path("/nonexistent"),
                   cue_in=track.cue_in or 0.0, cue_out=track.cue_out, duration=track.duration,
                   reason=reason, queue_item_id=item.pk if item else None,
                   requested_by_id=item.requested_by_id if item else None, note=item.note if item else "")

    @property
    def length(self) -> float | None:
        end = self.cue_out or self.duration
        return max(0.0, end - self.cue_in) if end else None


@dataclass
class OnAir:
    entry: Entry
    uid: uuid.UUID
    started_at: datetime
    started_mono: float
    generation: int
    paused_for: float = 0.0
    paused_at: float | None = None

    def played(self, now: float) -> float:
        paused = self.paused_for + ((now - self.paused_at) if self.paused_at else 0.0)
        return max(0.0, now - self.started_mono - paused)


@dataclass
class Prepared:
    key: tuple
    media: Any


class Broadcaster:
    """Sends this process's channel-layer messages from its own thread.

    The worker thread never waits on Redis: status messages (latest only) and
    the services' notices and nudges (in order, at most 500 waiting) are handed
    over here, so a slow or vanished Redis delays them, never the next item.
    """

    def __init__(self, slug: str) -> None:
        self.slug = slug
        self.latest: dict[str, Any] | None = None
        self.jobs: deque[Callable[[], bool]] = deque(maxlen=500)
        self.closing = False
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="status", daemon=True)
        self.thread.start()

    def send(self, data: dict[str, Any]) -> None:
        with self.condition:
            self.latest = data
            self.condition.notify()

    def submit(self, job: Callable[[], bool]) -> None:
        with self.condition:
            self.jobs.append(job)
            self.condition.notify()

    def _run(self) -> None:
        while True:
            with self.condition:
                while self.latest is None and not self.jobs and not self.closing:
                    self.condition.wait()
                if self.closing and self.latest is None and not self.jobs:
                    return
                jobs, self.jobs = list(self.jobs), deque(maxlen=500)
                data, self.latest = self.latest, None
            for job in jobs:
                job()  # station_notify_now / channel sends: they log and return on failure
            if data is not None:
                station_notify_now(self.slug, MessageType.PLAYBACK_STATUS, data)

    def close(self, timeout: float = 2.0) -> None:
        with self.condition:
            self.closing = True
            self.condition.notify()
        self.thread.join(timeout)


@dataclass
class WorkerStatus:
    silence_since: float | None = None
    silence_alerted: bool = False
    db_down_since: float | None = None
    last_broadcast: float = 0.0
    last_heartbeat: float = 0.0
    last_pool_refresh: float = -1e9
    recent_artists: list[str] = field(default_factory=list)


class PlaybackWorker:
    def __init__(self, station: Station, engine: Engine, events: queue.Queue, *, owner: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.station = station
        self.slug = station.slug
        self.engine = engine
        self.events = events
        self.owner = owner
        self.clock = clock
        self.key = services.playback_lease_key(station)
        self.on_air: OnAir | None = None
        self.prepared: Prepared | None = None
        self.upcoming: list[Entry] = []
        self.pool: list[Entry] = []  # auto-DJ songs, for when the database is away
        self.emergency: list[Entry] = []
        self.emergency_index = 0
        self.pending: list[Callable[[], None]] = []  # ordered write-behind
        self.paused = False
        self.stopped = False
        self.lost_lease = False
        self.nudged = True
        self.status = WorkerStatus()
        self.started_at = timezone.now()
        self.broadcaster = Broadcaster(self.slug)

    # --- database access, never blocking the broadcast --------------------------------

    def db(self, fn: Callable[[], Any], default: Any = None) -> Any:
        """Run a read now; on a database error, note the outage and return `default`."""
        try:
            result = fn()
        except DB_ERRORS as exc:
            self._db_failed(exc)
            return default
        self._db_ok()
        return result

    def later(self, fn: Callable[[], None]) -> None:
        """Queue a write; it runs in order at the end of this turn, or once the database answers.

        Never written inline: at a track change the next item starts first.
        """
        self.pending.append(fn)

    def flush(self) -> bool:
        while self.pending:
            try:
                self.pending[0]()
            except DB_ERRORS as exc:
                self._db_failed(exc)
                return False
            self.pending.pop(0)
        self._db_ok()
        return True

    def _db_failed(self, exc: Exception) -> None:
        if self.status.db_down_since is None:
            self.status.db_down_since = self.clock()
            logger.error("station=%s database unavailable, playing on from memory: %s", self.slug, exc)
        if not connection.in_atomic_block:
            try:
                connection.close()  # the next query reconnects
            except DB_ERRORS:
                pass

    def _db_ok(self) -> None:
        if self.status.db_down_since is not None:
            logger.warning("station=%s database back after %.1f s; %d writes caught up", self.slug,
                           self.clock() - self.status.db_down_since, len(self.pending))
            self.status.db_down_since = None

    # --- start-up ----------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: the item that was on air is logged as interrupted, then dropped."""
        state = PlayerState.objects.filter(station=self.station).first()
        playing = list(QueueItem.objects.filter(station=self.station, status=QueueItem.Status.PLAYING)
                       .select_related("track"))
        if state is not None and state.current_log_uid and state.current_track_id:
            ended = state.updated_at
            started = state.started_at or ended
            services.playlog_write([self._log_row(
                uid=state.current_log_uid, track=state.current_track, reason=state.current_reason
                or Reason.MANUAL, started_at=started, ended_at=ended,
                played=(ended - started).total_seconds(), outcome=PlayLog.Outcome.INTERRUPTED,
                failure="playback worker restarted")])
            logger.warning("station=%s track=%s was on air when the worker stopped: logged as interrupted",
                           self.slug, state.current_track_id)
        QueueItem.objects.filter(pk__in=[item.pk for item in playing]).delete()
        PlayerState.objects.update_or_create(station=self.station, defaults={
            "is_playing": False, "paused": False, "current_track": None, "current_log_uid": None,
            "started_at": None, "position": 0.0, "duration": None,
            "stopped": state.stopped if state else False, "volume": state.volume if state else 100})
        if state is not None:
            self.stopped = state.stopped
            self.engine.set_volume(state.volume)
        self.refresh()

    # --- one turn of the loop ------------------------------------------------------------

    def step(self, timeout: float = 0.05) -> None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            event = None
        if event is not None:
            self.handle_event(event)
        now = self.clock()
        if self.nudged:
            self.nudged = False
            self.handle_commands()
            self.refresh()
        if now - self.status.last_heartbeat >= settings.PLAYBACK_HEARTBEAT_SECONDS:
            self.heartbeat()
        if self.on_air is None and not self.stopped and not self.paused:
            self.start_next()
        self.check_stalled()
        self.ensure_prepared()
        self.check_silence()
        if self.on_air is not None and now - self.status.last_broadcast >= 1.0:
            self.broadcast()
        if self.pending and self.status.db_down_since is None:
            self.flush()  # while the database is away, heartbeats retry it

    def handle_event(self, event: tuple) -> None:
        source, name, *rest = event
        if source == "nudge":
            self.nudged = True
            return
        generation, _at = rest
        if self.on_air is None or generation != self.on_air.generation:
            return  # about a media we already replaced
        if name == "playing":
            self.status.silence_since = None
            return
        if name == "end" and not self.engine.is_ended():
            return  # the player has moved on to another media meanwhile
        played = self.on_air.played(self.clock())
        expected = self.on_air.entry.length
        if name == "error":
            self.finish(PlayLog.Outcome.FAILED, "VLC could not play the file")
        elif expected and expected > 2 * FAILED_IF_ENDED_BEFORE and played < FAILED_IF_ENDED_BEFORE:
            self.finish(PlayLog.Outcome.FAILED, f"ended after {played:.2f} s of {expected:.1f} s: "
                                                "the file could not be decoded")
        else:
            self.finish(PlayLog.Outcome.COMPLETED)
        self.start_next()

    def check_stalled(self) -> None:
        """An item that has not started playing within a second is skipped as failed."""
        if self.on_air is None or self.paused:
            return
        if self.clock() - self.on_air.started_mono > 1.0 and self.engine.position() == 0.0 \
                and self.engine.is_ended():
            self.finish(PlayLog.Outcome.FAILED, "playback did not start")
            self.start_next()

    # --- what plays next ------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the queue (and top it up from auto-DJ) when the database answers."""
        def read() -> list[Entry]:
            services.autodj_top_up(station=self.station)
            items = (QueueItem.objects.filter(station=self.station, status=QueueItem.Status.QUEUED)
                     .select_related("track").order_by("position", "id")[:20])
            return [Entry.from_track(item.track, reason=item.reason, item=item) for item in items]

        if not self.flush():
            return
        entries = self.db(read)
        if entries is not None:
            self.upcoming = entries
        if self.clock() - self.status.last_pool_refresh > 300:
            pool = self.db(lambda: [Entry.from_track(t, reason=Reason.AUTODJ)
                                    for t in services.autodj_candidates(self.station, limit=200)])
            emergency = self.db(lambda: [Entry.from_track(t, reason=Reason.EMERGENCY)
                                         for t in services.emergency_tracks(self.station)])
            if pool is not None:
                self.pool, self.emergency = pool, emergency or []
                self.status.last_pool_refresh = self.clock()

    def next_entry(self) -> Entry | None:
        while self.upcoming:
            entry = self.upcoming.pop(0)
            if entry.path.is_file():
                return entry
            self.log_failed_entry(entry, f"audio file missing: {entry.path.name}")
        # The queue is empty and the database could not top it up: auto-DJ from memory.
        last = self.status.recent_artists[-1] if self.status.recent_artists else ""
        for entry in list(self.pool):
            if entry.path.is_file() and (not entry.artist or entry.artist.casefold() != last.casefold()):
                self.pool.remove(entry)
                return entry
        if self.emergency:
            for _ in range(len(self.emergency)):
                entry = self.emergency[self.emergency_index % len(self.emergency)]
                self.emergency_index += 1
                if entry.path.is_file():
                    return entry
        return None

    def ensure_prepared(self) -> None:
        """Have the next item's media ready before the current one ends."""
        if not self.upcoming:
            return
        entry = self.upcoming[0]
        key = (entry.queue_item_id, entry.track_id, str(entry.path))
        if self.prepared is not None and self.prepared.key == key:
            return
        try:
            self.prepared = Prepared(key, self.engine.prepare(entry.path, cue_in=entry.cue_in,
                                                              cue_out=entry.cue_out, duration=entry.duration))
        except FileNotFoundError:
            self.prepared = None

    def start_next(self) -> bool:
        entry = self.next_entry()
        while entry is not None:
            if self.start(entry):
                return True
            entry = self.next_entry()
        if self.on_air is None and self.status.silence_since is None:
            self.status.silence_since = self.clock()
            self.broadcast(force=True)
        return False

    def start(self, entry: Entry) -> bool:
        key = (entry.queue_item_id, entry.track_id, str(entry.path))
        try:
            media = self.prepared.media if self.prepared and self.prepared.key == key else \
                self.engine.prepare(entry.path, cue_in=entry.cue_in, cue_out=entry.cue_out,
                                    duration=entry.duration)
            self.prepared = None
            self.engine.restore_volume()
            generation = self.engine.start(media)
        except (FileNotFoundError, RuntimeError) as exc:
            self.log_failed_entry(entry, str(exc))
            return False
        self.on_air = OnAir(entry=entry, uid=uuid.uuid4(), started_at=timezone.now(),
                            started_mono=self.clock(), generation=generation)
        self.status.silence_since, self.status.silence_alerted = None, False
        self.status.recent_artists = (self.status.recent_artists + [entry.artist])[-5:]
        on_air = self.on_air
        self.later(lambda: self._record_start(on_air))
        logger.info("station=%s track=%s on air (%s)", self.slug, entry.track_id, entry.reason)
        self.broadcast(force=True)
        return True

    def _record_start(self, on_air: OnAir) -> None:
        entry = on_air.entry
        if entry.queue_item_id:
            QueueItem.objects.filter(pk=entry.queue_item_id).update(status=QueueItem.Status.PLAYING)
        PlayerState.objects.update_or_create(station=self.station, defaults={
            "is_playing": True, "paused": False, "stopped": False, "current_track_id": entry.track_id,
            "current_log_uid": on_air.uid, "current_reason": entry.reason,
            "started_at": on_air.started_at, "position": 0.0, "duration": entry.length,
            "volume": self.engine.volume})

    def finish(self, outcome: str, failure: str = "") -> None:
        """Log the item on air with its outcome and take it off the queue."""
        on_air = self.on_air
        if on_air is None:
            return
        self.on_air = None
        played = on_air.played(self.clock())
        ended = on_air.started_at + timedelta(seconds=played)
        entry = on_air.entry
        row = self._entry_row(entry, uid=on_air.uid, started_at=on_air.started_at, ended_at=ended,
                              played=played, outcome=outcome, failure=failure)

        def write() -> None:
            services.playlog_write([row])
            if entry.queue_item_id:
                QueueItem.objects.filter(pk=entry.queue_item_id).delete()
            PlayerState.objects.filter(station=self.station, current_log_uid=on_air.uid).update(
                is_playing=False, current_track=None, current_log_uid=None, started_at=None, position=0.0)

        self.later(write)
        log = logger.warning if outcome == PlayLog.Outcome.FAILED else logger.info
        log("station=%s track=%s %s after %.1f s %s", self.slug, entry.track_id, outcome, played, failure)

    def log_failed_entry(self, entry: Entry, failure: str) -> None:
        """An item that could not even start: logged as failed, removed, and the show goes on."""
        now = timezone.now()
        row = self._entry_row(entry, uid=uuid.uuid4(), started_at=now, ended_at=now, played=0.0,
                              outcome=PlayLog.Outcome.FAILED, failure=failure)

        def write() -> None:
            services.playlog_write([row])
            if entry.queue_item_id:
                QueueItem.objects.filter(pk=entry.queue_item_id).delete()

        self.later(write)
        logger.warning("station=%s track=%s skipped: %s", self.slug, entry.track_id, failure)

    def _entry_row(self, entry: Entry, **times) -> dict[str, Any]:
        return self._log_row(track_id=entry.track_id, title=entry.title, artist=entry.artist, kind=entry.kind,
                             reason=entry.reason, requested_by_id=entry.requested_by_id, note=entry.note,
                             **times)

    def _log_row(self, *, uid, reason, started_at, ended_at, played, outcome, failure="", track=None,
                 track_id=None, title=None, artist=None, kind=None, requested_by_id=None,
                 note="") -> dict[str, Any]:
        if track is not None:
            track_id, title, artist, kind = track.pk, track.title, track.artist, track.kind
        return {"uid": uid, "station_id": self.station.pk, "track_id": track_id, "title": title[:300],
                "artist": (artist or "")[:300], "kind": kind, "started_at": started_at, "ended_at": ended_at,
                "played_seconds": round(played, 3), "outcome": outcome, "failure_reason": failure[:500],
                "reason": reason, "requested_by_id": requested_by_id, "note": note[:200]}

    # --- operators' commands -------------------------------------------------------------

    def handle_commands(self) -> None:
        commands = self.db(lambda: list(services.commands_pending(self.station)), default=[])
        for command in commands:
            ok, result = self.apply(command)
            self.later(lambda c=command, ok=ok, result=result: services.command_finish(c, ok=ok, result=result))
            self.broadcast(force=True)

    def apply(self, command: PlayerCommand) -> tuple[bool, str]:
        action, args = command.action, command.args or {}
        try:
            if action == PlayerCommand.Action.PLAY:
                self.stopped = False
                if self.paused:
                    return self.apply_pause(False)
                if self.on_air is None:
                    self.refresh()
                    return (True, "started") if self.start_next() else (False, "nothing playable")
                return True, "already playing"
            if action == PlayerCommand.Action.PAUSE:
                return self.apply_pause(True)
            if action == PlayerCommand.Action.RESUME:
                return self.apply_pause(False)
            if action == PlayerCommand.Action.STOP:
                self.stopped = True
                if self.on_air is not None:
                    self.engine.fade_out(FADE_MS)
                    self.engine.stop()
                    self.finish(PlayLog.Outcome.INTERRUPTED, "stopped by an operator")
                self.paused = False
                self.later(lambda: PlayerState.objects.filter(station=self.station).update(stopped=True))
                return True, "stopped"
            if action == PlayerCommand.Action.SKIP:
                if self.on_air is None:
                    return False, "nothing on air"
                self.engine.fade_out(FADE_MS)
                self.finish(PlayLog.Outcome.SKIPPED, "skipped by an operator")
                self.paused = False
                if not self.stopped:
                    self.start_next() or self.engine.stop()
                return True, "skipped"
            if action == PlayerCommand.Action.SEEK:
                if self.on_air is None:
                    return False, "nothing on air"
                self.engine.seek(self.on_air.entry.cue_in + float(args.get("seconds", 0)))
                self.on_air.started_mono = self.clock() - float(args.get("seconds", 0))
                self.on_air.paused_for = 0.0
                return True, "seeked"
            if action == PlayerCommand.Action.VOLUME:
                self.engine.set_volume(int(args["volume"]), fade_ms=int(args.get("fade_ms", FADE_MS)))
                volume = self.engine.volume
                self.later(lambda: PlayerState.objects.filter(station=self.station).update(volume=volume))
                return True, f"volume {volume}"
            if action == PlayerCommand.Action.PLAY_NOW:
                self.refresh()
                wanted = args.get("queue_item")
                entry = next((e for e in self.upcoming if e.queue_item_id == wanted), None)
                if entry is None:
                    return False, "the requested item is no longer queued"
                self.upcoming.remove(entry)
                if self.on_air is not None:
                    self.engine.fade_out(FADE_MS)
                    self.finish(PlayLog.Outcome.INTERRUPTED, "interrupted by play-now")
                self.stopped = self.paused = False
                return (True, "playing now") if self.start(entry) else (False, "could not start the item")
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"bad arguments: {exc}"
        return False, f"unknown action {action}"

    def apply_pause(self, paused: bool) -> tuple[bool, str]:
        if self.on_air is None:
            self.paused = False
            return False, "nothing on air"
        if paused == self.paused:
            return True, "unchanged"
        self.engine.pause(paused)
        self.paused = paused
        now = self.clock()
        if paused:
            self.on_air.paused_at = now
        elif self.on_air.paused_at is not None:
            self.on_air.paused_for += now - self.on_air.paused_at
            self.on_air.paused_at = None
        self.later(lambda: PlayerState.objects.filter(station=self.station).update(paused=paused))
        return True, "paused" if paused else "resumed"

    # --- liveness, status, alerts ------------------------------------------------------------

    def near_a_join(self) -> bool:
        """The item on air ends before a reconnect attempt could time out (it would delay the next).

        Right after an item starts is always a safe moment, so even short items leave one.
        """
        if self.on_air is None or not self.on_air.entry.length:
            return False
        played = self.on_air.played(self.clock())
        timeout = settings.DATABASES["default"].get("OPTIONS", {}).get("connect_timeout", 3)
        return played > 1.0 and self.on_air.entry.length - played < timeout + 1.0

    def heartbeat(self) -> None:
        self.status.last_heartbeat = self.clock()
        if self.status.db_down_since is not None and self.near_a_join():
            return  # reconnecting may block for the connect timeout: not right before a join
        if not connection.in_atomic_block:  # never inside a caller's (or a test's) transaction
            close_old_connections()
        renewed = self.db(lambda: lease_renew(key=self.key, owner=self.owner), default=True)
        if renewed is False:
            self.lost_lease = True
            return
        if self.on_air is not None:
            position = self.on_air.played(self.clock())
            self.later(lambda: PlayerState.objects.filter(station=self.station).update(
                position=round(position, 2), paused=self.paused))
        # Reconcile: pick up commands whose nudge was lost, and refresh the queue.
        self.handle_commands()
        self.refresh()

    def broadcast(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.status.last_broadcast < 1.0:
            return
        self.status.last_broadcast = now
        self.broadcaster.send(self.status_data())

    def status_data(self) -> dict[str, Any]:
        on_air = self.on_air
        current = None
        if on_air is not None:
            entry = on_air.entry
            current = {"id": entry.track_id, "title": entry.title, "artist": entry.artist, "kind": entry.kind,
                       "duration": entry.length, "cue_in": entry.cue_in, "cue_out": entry.cue_out,
                       "reason": entry.reason, "started_at": on_air.started_at.isoformat(),
                       "position": round(on_air.played(self.clock()), 2)}
        # Same shape as playback.services.playback_snapshot (docs/api.md).
        queue_view = [{"id": e.queue_item_id, "position": index, "status": "queued", "reason": e.reason,
                       "requested_by": None, "note": e.note,
                       "track": {"id": e.track_id, "title": e.title, "artist": e.artist, "kind": e.kind,
                                 "duration": e.duration, "cue_in": e.cue_in, "cue_out": e.cue_out}}
                      for index, e in enumerate(self.upcoming)]
        worker = {"up": True, "heartbeat_at": timezone.now().isoformat(),
                  "started_at": self.started_at.isoformat()}
        return {"station": self.slug, "worker": worker, "is_playing": on_air is not None,
                "paused": self.paused, "stopped": self.stopped, "current": current,
                "volume": self.engine.volume, "queue": queue_view,
                "database": "down" if self.status.db_down_since is not None else "up"}

    def check_silence(self) -> None:
        if self.on_air is not None or self.stopped or self.status.silence_since is None:
            return
        if self.status.silence_alerted:
            return
        silent_for = self.clock() - self.status.silence_since
        if silent_for < self.station.silence_alert_seconds:
            return
        self.status.silence_alerted = True
        with translation.override(self.station.language):
            message = _("Dead air: nothing playable for %(seconds)d s (queue, auto-DJ and emergency "
                        "playlist).") % {"seconds": silent_for}
        logger.error("station=%s %s", self.slug, message)
        station = self.station
        self.later(lambda: notification_post(station=station, level=Notification.Level.ERROR,
                                             source="playback", message=message))

    def close(self) -> None:
        if self.on_air is not None:
            self.finish(PlayLog.Outcome.INTERRUPTED, "playback worker stopped")
        self.engine.stop()
        self.flush()
        self.broadcaster.close()
