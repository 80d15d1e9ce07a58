"""The playback worker's on-air thread: small steps around the VLC engine.

`PlaybackWorker.step()` is one turn of the loop; tests call the steps one at a
time. The on-air thread waits on nothing but VLC and its own event queue: the
database is behind `Backstage` (its own thread; writes are write-behind, reads
arrive as events), channel-layer traffic behind the process's `ChannelLoop`,
and what plays next is kept in memory (`self.upcoming`, the auto-DJ pool and the
emergency list), so a PostgreSQL or Redis outage, or one that just stops
answering, only delays the as-run log and live status. A watchdog compares what
must be playing with the audio that actually leaves the engine.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from playback import services
from playback.backstage import DB_ERRORS, Backstage, Entry, spool_path
from playback.engine import Engine
from playback.models import PlayerCommand, PlayerState, PlayLog, Reason
from playback.programme import HARD_FADE_MS, LATE_LIMIT, Programme
from radio.models import Notification, Station
from radio.notify import MessageType, station_notify
from radio.services import notification_post

logger = logging.getLogger(__name__)

FADE_MS = 300
FAILED_IF_ENDED_BEFORE = 0.5  # seconds played: a "completed" item this short failed to decode
WATCHDOG_GRACE = 2.0  # seconds past an item's due end, or without audio, before moving on
BEACON_SECONDS = 0.2
# libvlc 3.0 starts an item's timeline ~56 ms inside the end of the one before when the item
# is started at the end event (measured here): the output would fall behind by that much at
# every join. Waiting 30 ms takes most of it away and leaves ~26 ms of margin for a busy
# machine before a join could open a gap; the rest is played back to back.
JOIN_DELAY = 0.030
# The status goes out when it changes (an item starts or ends, pause, resume, stop, seek, volume,
# the database away or back); otherwise only this often, as a keepalive and clock sync: clients
# move the position on with the clock (docs/api.md), so a steady tick would only cost every
# socket a message.
STATUS_KEEPALIVE = 15.0
STREAM_GRACE = 10.0  # s without an Icecast source connection before the stream counts as down


@dataclass
class OnAir:
    entry: Entry
    uid: uuid.UUID
    started_at: datetime
    started_mono: float
    generation: int
    paused_for: float = 0.0
    paused_at: float | None = None
    resumed_mono: float = 0.0
    last_position: float = -1.0
    position_moved: float = 0.0
    heard_synced: bool = False  # started_mono corrected to when its first sample was really heard
    heard_delta: float = 0.0  # that correction (s): the as-run log gets it, live status keeps its time

    def played(self, now: float) -> float:
        paused = self.paused_for + ((now - self.paused_at) if self.paused_at else 0.0)
        return max(0.0, now - self.started_mono - paused)


@dataclass
class Prepared:
    key: tuple
    media: Any


def beacon_path(slug: str) -> Path:
    return Path(settings.VAR_DIR) / f"playback-{slug}.json"


class Beacon:
    """Writes what is on air to a small local file five times a second, from its own thread.

    After a kill -9 the next worker reads it: the interrupted item is logged with the
    time it really played (the database heartbeat is too coarse, and may be away).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, Any] | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="beacon", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        written: dict[str, Any] | None = None
        while not self.stopping.wait(BEACON_SECONDS):
            state = self.state
            if state is None and written is None:
                continue
            try:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps({**(state or {}), "written_at": time.time()}))
                os.replace(tmp, self.path)
                written = state
            except Exception:  # noqa: BLE001 - the beacon thread never dies of one write
                logger.exception("playback beacon %s not written", self.path)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(0.5)


@dataclass
class WorkerStatus:
    silence_since: float | None = None  # nothing on air since
    dead_air_since: float | None = None  # no audio out of the engine since
    silence_alerted: bool = False
    last_broadcast: float = -1e9
    last_state: tuple | None = None  # what the last status said, but for the clock
    last_position_write: float = 0.0
    recent_artists: list[str] = field(default_factory=list)


class PlaybackWorker:
    def __init__(self, station: Station, engine: Engine, events: queue.Queue, *, owner: str,
                 clock: Callable[[], float] = time.monotonic, threaded: bool = False,
                 beacon: bool = False, wall: Callable[[], datetime] = timezone.now) -> None:
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
        self.consumed: deque[int] = deque(maxlen=500)  # queue items already taken: stale snapshots skip them
        self.pool: list[Entry] = []  # auto-DJ songs, for when the queue is empty or the database away
        self.emergency: list[Entry] = []
        self.emergency_index = 0
        self.paused = False
        self.stopped = False
        self.lost_lease = False
        self.status = WorkerStatus()
        self.stream_checked, self.stream_down = -1e9, False
        self.crossfaded: uuid.UUID | None = None  # the item whose crossfade was decided
        self.started_at = timezone.now()
        self.started_mono = clock()
        self.baseline = self.started_mono  # no dead air counted before this (start, resume, play)
        self.backstage = Backstage(station, key=self.key, owner=owner, post=events.put, clock=clock,
                                   threaded=threaded)
        self.beacon = Beacon(beacon_path(self.slug)) if beacon else None
        self.join_delay = JOIN_DELAY  # s after a natural end before the next start
        self.join_at: float | None = None
        self.programme = Programme(clock=clock, wall=wall)
        self.last_due_us = 0
        self.timed_generation = -1

    @property
    def nudged(self) -> bool:
        return self.backstage.wake.is_set()

    @nudged.setter
    def nudged(self, value: bool) -> None:
        if value:
            self.backstage.nudge()

    def later(self, fn: Callable[[], None], *, spool: dict[str, Any] | None = None) -> None:
        """Queue a write for the backstage thread; at a track change the next item starts first."""
        self.backstage.write(fn, spool=spool)

    # --- start-up (before the broadcast: the database is read inline here) -----------------

    def recover(self) -> None:
        """After a restart: the item that was on air is logged as interrupted, then dropped."""
        self._replay_spool()
        state = PlayerState.objects.filter(station=self.station).select_related("current_track").first()
        beacon = self._read_beacon()
        if state is not None and state.current_log_uid and state.current_track_id:
            started = state.started_at or state.updated_at
            played, ended = state.position, started + timedelta(seconds=state.position)
            if beacon.get("uid") == str(state.current_log_uid):
                played = float(beacon["played"])
                ended = datetime.fromtimestamp(float(beacon["written_at"]), tz=UTC)
                started = datetime.fromisoformat(beacon["started_at"])
            services.playlog_write([self._log_row(
                uid=state.current_log_uid, track=state.current_track, reason=state.current_reason
                or Reason.MANUAL, started_at=started, ended_at=ended, played=played,
                outcome=PlayLog.Outcome.INTERRUPTED, failure="playback worker restarted",
                note=beacon.get("note", "") if beacon.get("uid") == str(state.current_log_uid) else "")])
            logger.warning("station=%s track=%s was on air when the worker stopped: logged as interrupted "
                           "after %.1f s", self.slug, state.current_track_id, played)
        services.queue_drop_playing(station=self.station)
        PlayerState.objects.update_or_create(station=self.station, defaults={
            "is_playing": False, "paused": False, "current_track": None, "current_log_uid": None,
            "started_at": None, "position": 0.0, "duration": None,
            "stopped": state.stopped if state else False, "volume": state.volume if state else 100})
        if state is not None:
            self.stopped = state.stopped
            self.engine.set_volume(state.volume)
        self.backstage.nudge()
        self.backstage.request_pool()

    def _read_beacon(self) -> dict[str, Any]:
        try:
            return json.loads(beacon_path(self.slug).read_text())
        except (OSError, ValueError):
            return {}

    def _replay_spool(self) -> None:
        """Write the as-run rows the last stop could not; a bad spool is set aside, never fatal."""
        spool = spool_path(self.slug)
        if not spool.exists():
            return
        try:
            rows = [row for row in json.loads(spool.read_text()) if row.get("station_id") == self.station.pk]
            services.playlog_write(rows)
        except (OSError, ValueError, *DB_ERRORS):
            logger.exception("station=%s as-run spool %s could not be written: kept aside", self.slug, spool)
            spool.replace(spool.with_suffix(".failed.json"))
            return
        spool.unlink()
        logger.warning("station=%s %d as-run rows kept on disk at the last stop are written",
                       self.slug, len(rows))

    # --- one turn of the loop ------------------------------------------------------------

    def step(self, timeout: float = 0.05) -> None:
        if self.backstage.thread is None and self.backstage.due():
            self.backstage.turn()  # tests: the backstage work inline, same code
        if self.join_at is not None:
            timeout = min(timeout, max(0.0, self.join_at - self.clock()))
        if self.engine.ramp is not None:
            timeout = min(timeout, 0.02)
        wake = self.programme.next_wake(self.clock(), self.on_air_end(), self.engine.start_lead())
        if wake is not None:
            timeout = min(timeout, max(0.0, wake - self.clock()))
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            event = None
        while event is not None:
            try:
                self.handle_event(event)
            except Exception:  # noqa: BLE001 - one bad event never stops the broadcast
                logger.exception("station=%s event %s failed", self.slug, event[:2])
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        self.tick()
        if self.backstage.thread is None and self.backstage.writes and self.backstage.db_down_since is None:
            self.backstage.flush()

    def tick(self) -> None:
        now = self.clock()
        self.engine.ramp_step()
        self.run_timer(now)
        if self.on_air is None and not self.stopped and not self.paused \
                and (self.join_at is None or now >= self.join_at):
            self.join_at = None
            self.start_next()
        self.check_stalled()
        self.watchdog(now)
        self.ensure_prepared()
        self.sync_heard_start()
        self.run_crossfade(now)
        self.check_silence(now)
        self.check_stream(now)
        self.broadcast()
        self.report_position(now)
        self.backstage.rescue()

    def handle_event(self, event: tuple) -> None:
        source, name, *rest = event
        if source == "queue":
            taken = set(self.consumed)
            self.upcoming = [e for e in name if e.queue_item_id not in taken]
            return
        if source == "pool":
            self.pool, self.emergency = name, rest[0]
            return
        if source == "schedule":
            self.programme.update(name, *rest)
            return
        if source == "commands":
            for command in name:
                ok, result = self.apply(command)
                self.later(lambda c=command, ok=ok, result=result: services.command_finish(c, ok=ok,
                                                                                           result=result))
                logger.info("station=%s command=%s %s: %s", self.slug, command.pk, command.action, result)
            self.broadcast(force=True)
            return
        if source == "lease":
            self.lost_lease = True
            return
        if source == "nudge":
            self.backstage.nudge()
            return
        generation, _at = rest
        if self.on_air is None or generation != self.on_air.generation:
            return  # about a media we already replaced
        if name == "playing":
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
            self.finish(PlayLog.Outcome.COMPLETED, natural=True)
            # A natural join: the next item starts JOIN_DELAY later, so that its timeline does
            # not start inside this one's.
            if self.join_delay > 0.002:
                self.join_at = self.clock() + self.join_delay
                return
        self.start_next()

    def check_stalled(self) -> None:
        """An item that has not started playing within a second is skipped as failed."""
        if self.on_air is None or self.paused:
            return
        if self.clock() - self.on_air.started_mono > 1.0 and self.engine.position() == 0.0 \
                and self.engine.is_ended():
            self.finish(PlayLog.Outcome.FAILED, "playback did not start")
            self.start_next()

    def watchdog(self, now: float) -> None:
        """Trust the output, not the player: move on when the item overruns or its audio stops."""
        on_air = self.on_air
        if on_air is None or self.paused:
            return
        played = on_air.played(now)
        length = on_air.entry.length
        why = ""
        if length and played > length + WATCHDOG_GRACE:
            why = f"still on air {played - length:.1f} s after its due end"
        elif now - max(on_air.started_mono, on_air.resumed_mono) > WATCHDOG_GRACE:
            silent = self.engine.silent_for(now)
            if silent is not None:
                if silent > WATCHDOG_GRACE:
                    why = f"no audio left the engine for {silent:.1f} s"
            else:  # an output that cannot tell (sound card): the position must move
                position = self.engine.position()
                if position != on_air.last_position:
                    on_air.last_position, on_air.position_moved = position, now
                elif now - on_air.position_moved > WATCHDOG_GRACE:
                    why = f"position stuck at {position:.1f} s for {now - on_air.position_moved:.1f} s"
        if not why:
            return
        logger.error("station=%s track=%s watchdog: %s; moving on", self.slug, on_air.entry.track_id, why)
        self.finish(PlayLog.Outcome.FAILED, f"watchdog: {why}")
        self.engine.stop()
        self.start_next()

    def next_entry(self) -> Entry | None:
        entry, hold = self.programme_entry()
        if entry is not None or hold:
            return entry
        while self.upcoming:
            entry = self.upcoming.pop(0)
            if entry.queue_item_id:
                self.consumed.append(entry.queue_item_id)
            if entry.path.is_file():
                return entry
            self.log_failed_entry(entry, f"audio file missing: {entry.path.name}")
        # The queue is empty (or the database could not top it up yet): auto-DJ from memory.
        last = self.status.recent_artists[-1] if self.status.recent_artists else ""
        candidates = [e for e in self.pool if e.path.is_file()]
        pick = next((e for e in candidates if not e.artist or e.artist.casefold() != last.casefold()), None)
        if pick is None and candidates:
            pick = candidates[0]
            pick.note = (pick.note + "; " if pick.note else "") + "artist separation relaxed"
        if pick is not None:
            self.pool.remove(pick)
            if len(self.pool) < 3:
                self.backstage.request_pool()
            return pick
        self.backstage.request_pool()
        if self.emergency:
            for _ in range(len(self.emergency)):
                entry = self.emergency[self.emergency_index % len(self.emergency)]
                self.emergency_index += 1
                if entry.path.is_file():
                    return entry
        return None

    # --- the programme: timed starts and back-timed fill (playback/programme.py) --------------

    def on_air_end(self) -> float | None:
        """When the item on air will have been heard out, on the clock (None: unknown or nothing)."""
        on_air = self.on_air
        if on_air is None or not on_air.entry.length or self.paused:
            return None
        return on_air.started_mono + on_air.paused_for + on_air.entry.length

    def run_timer(self, now: float) -> None:
        """Fade out and start on time for the next timed start (see playback/programme.py)."""
        self.engine.note_start_latency()  # learn VLC's start latency once the first buffer came
        timed = self.programme.next_timed(self.on_air_end())
        if timed is None:
            return
        start, at = timed
        if self.stopped:
            if now >= at:
                self.programme.take(start)  # an operator stopped the station: the programme waits
            return
        fade, call = self.programme.fire_times(at, self.engine.start_lead())
        if now >= fade and self.programme.fading != start.key and self.on_air is not None and now < call:
            self.programme.fading = start.key
            self.engine.fade_to_silence(HARD_FADE_MS, end_us=int(at * 1e6))
        if now < call:
            return
        entries = self.programme.take(start)
        late = now - at
        if not entries:
            logger.error("station=%s programme %s: nothing playable at its start; auto-DJ carries on",
                         self.slug, start.label)
            self.engine.restore_volume()
            return
        if self.on_air is not None:
            self.finish(PlayLog.Outcome.INTERRUPTED, f"programme start: {start.label}")
        self.paused = False
        due = None if late > 0 or late < -5 else at  # past due: as soon as possible
        if late > LATE_LIMIT:
            logger.warning("station=%s programme %s starts %.0f s late", self.slug, start.label, late)
        first = entries[0]
        if not self.start(first, due=due):
            self.start_next()

    def programme_entry(self) -> tuple[Entry | None, bool]:
        """(The programme's next item, a soft start that is due, or a back-timed fill item; True to
        begin nothing because a hard start is a moment away)."""
        now = self.clock()
        begins = now + self.engine.ahead()
        entry = self.programme.next_scheduled(begins)
        if entry is not None:
            return entry, False
        queued = [e for e in self.upcoming if e.path.is_file()]
        decision = self.programme.choose(now, begins, queued, [e for e in self.pool if e.path.is_file()])
        if decision[0] == "start":
            start = decision[1]
            entries = self.programme.take(start)
            if entries:
                logger.info("station=%s programme %s starts (soft), %+.1f s from its time", self.slug,
                            start.label, begins - self.programme.mono_of(start.at))
                return entries[0], False
            return None, False
        if decision[0] == "hold":
            return None, True
        if decision[0] == "pick":
            pick = decision[1]
            if pick in self.upcoming:
                self.upcoming.remove(pick)
                if pick.queue_item_id:
                    self.consumed.append(pick.queue_item_id)
            elif pick in self.pool:
                self.pool.remove(pick)
            return pick, False
        return None, False

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

    def sync_heard_start(self) -> None:
        """Once the output has played the item's first sample, take its start from there: a start from
        silence is heard VLC's start latency after play() (~0.3 s), which the clock alone cannot know."""
        on_air = self.on_air
        if on_air is None or on_air.heard_synced:
            return
        heard = self.engine.heard_start(on_air.generation)
        if heard is None:
            return
        on_air.heard_synced = True
        if on_air.generation == self.timed_generation:  # as played out, not as planned
            latency = self.engine.start_latencies[-1] / 1000 if self.engine.start_latencies else 0.0
            logger.info("station=%s timed start heard %+.1f ms from its due time (engine latency %.0f ms)",
                        self.slug, (heard * 1e6 - self.last_due_us) / 1000, latency)
        delta = heard - on_air.started_mono
        if on_air.paused_for or abs(delta) > 2.0:
            return
        on_air.started_mono = heard
        on_air.heard_delta = delta

    def run_crossfade(self, now: float) -> None:
        """Songs crossfade (the station's crossfade length): the next song starts on the other deck at
        the song on air's cue-out minus the crossfade, so their edges overlap. Jingles, commercials
        and the rest butt-join; near a programme start back-timing and the timer decide instead."""
        on_air, xf = self.on_air, self.programme.settings.crossfade
        if (xf <= 0 or on_air is None or self.paused or self.stopped or not self.engine.can_overlay
                or self.crossfaded == on_air.uid):
            return
        if not on_air.heard_synced or not on_air.entry.length:
            return  # its start as heard is not known yet
        end = on_air.started_mono + on_air.paused_for + on_air.entry.length
        if end - now > xf + self.engine.start_lead() + 0.1:
            return
        self.crossfaded = on_air.uid
        at = end - xf
        length = on_air.entry.length or 0.0
        if (on_air.entry.kind != "song" or length < 2 * xf or at - now < 0.15 or on_air.paused_for
                or not self.programme.quiet(now)):
            return
        peek = next((e for e in self.upcoming if e.path.is_file()), None)
        if peek is not None and (peek.kind != "song" or (peek.length or 0.0) < 2 * xf):
            return  # what comes next butt-joins
        entry = self.next_entry()
        if entry is None:
            return
        self.finish(PlayLog.Outcome.COMPLETED, until=end)
        if not self.start(entry, crossfade=(at, xf)):
            self.start_next()

    def start(self, entry: Entry, *, due: float | None = None,
              crossfade: tuple[float, float] | None = None) -> bool:
        """Start `entry` now, or (`due`, on the clock) so that its first sample is heard then, or
        (`crossfade`: at, seconds) on the other deck, overlapping what plays."""
        key = (entry.queue_item_id, entry.track_id, str(entry.path))
        try:
            media = self.prepared.media if self.prepared and self.prepared.key == key else \
                self.engine.prepare(entry.path, cue_in=entry.cue_in, cue_out=entry.cue_out,
                                    duration=entry.duration)
            self.prepared = None
            gain_db = self.programme.settings.gain_db(entry)
            if crossfade is not None:
                due = crossfade[0]
                generation = self.engine.start_overlay(media, int(due * 1e6), gain_db=gain_db,
                                                       fade_ms=crossfade[1] * 1000)
            elif due is not None:
                self.last_due_us = int(due * 1e6)
                generation = self.engine.start_at(media, self.last_due_us, gain_db=gain_db)
                self.timed_generation = generation
            else:
                generation = self.engine.start(media, gain_db=gain_db)
        except (FileNotFoundError, RuntimeError) as exc:
            self.log_failed_entry(entry, str(exc))
            return False
        self.join_at = None
        # Heard once what was handed over before it has played out (a gapless join).
        now = self.clock()
        lead = max(0.0, due - now) if due is not None else self.engine.ahead()
        self.on_air = OnAir(entry=entry, uid=uuid.uuid4(), started_at=timezone.now() + timedelta(seconds=lead),
                            started_mono=now + lead, generation=generation, position_moved=now)
        self.status.silence_since = None
        self.status.recent_artists = (self.status.recent_artists + [entry.artist])[-5:]
        on_air = self.on_air
        self.later(lambda: self._record_start(on_air))
        self.backstage.nudge()  # top the queue up again and read it
        logger.info("station=%s track=%s on air (%s)", self.slug, entry.track_id, entry.reason)
        self.broadcast(force=True)
        self._beacon()
        return True

    def _record_start(self, on_air: OnAir) -> None:
        entry = on_air.entry
        if entry.queue_item_id:
            services.queue_item_started(station=self.station, item_id=entry.queue_item_id)
        PlayerState.objects.update_or_create(station=self.station, defaults={
            "is_playing": True, "paused": False, "stopped": False, "current_track_id": entry.track_id,
            "current_log_uid": on_air.uid, "current_reason": entry.reason,
            "started_at": on_air.started_at, "position": 0.0, "duration": entry.length,
            "volume": self.engine.volume})

    def heard(self, on_air: OnAir, now: float) -> float:
        """Seconds of this item a listener heard: the clock, less pauses, capped by its length
        and by the last sample that left the engine."""
        played = on_air.played(now)
        present = self.clock()
        silent = self.engine.silent_for(present)
        if silent is not None and silent > 0.25:
            played = min(played, on_air.played(present - silent))
        length = on_air.entry.length
        return min(played, length) if length else played

    def finish(self, outcome: str, failure: str = "", *, natural: bool = False,
               until: float | None = None) -> None:
        """Log the item on air with its outcome and take it off the queue.

        `natural`: it reached its end, and what the output still holds of it will be heard.
        `until`: it will have been heard out then (on the clock; a crossfade's outgoing item).
        """
        on_air = self.on_air
        if on_air is None:
            return
        self.on_air = None
        lead = self.engine.ahead() if natural else max(0.0, until - self.clock()) if until else 0.0
        now = self.clock() + lead
        played = self.heard(on_air, now)
        ended = timezone.now() + timedelta(seconds=lead - max(0.0, on_air.played(now) - played))
        entry = on_air.entry
        row = self._entry_row(entry, uid=on_air.uid, ended_at=ended,
                              started_at=on_air.started_at + timedelta(seconds=on_air.heard_delta),
                              played=played, outcome=outcome, failure=failure)

        def write() -> None:
            services.playlog_write([row])
            if entry.queue_item_id:
                services.queue_item_done(station=self.station, item_id=entry.queue_item_id)
            PlayerState.objects.filter(station=self.station, current_log_uid=on_air.uid).update(
                is_playing=False, current_track=None, current_log_uid=None, started_at=None, position=0.0,
                updated_at=timezone.now())

        self.later(write, spool=row)
        log = logger.warning if outcome == PlayLog.Outcome.FAILED else logger.info
        log("station=%s track=%s %s after %.1f s %s", self.slug, entry.track_id, outcome, played, failure)
        self._beacon()

    def log_failed_entry(self, entry: Entry, failure: str) -> None:
        """An item that could not even start: logged as failed, removed, and the show goes on."""
        now = timezone.now()
        row = self._entry_row(entry, uid=uuid.uuid4(), started_at=now, ended_at=now, played=0.0,
                              outcome=PlayLog.Outcome.FAILED, failure=failure)

        def write() -> None:
            services.playlog_write([row])
            if entry.queue_item_id:
                services.queue_item_done(station=self.station, item_id=entry.queue_item_id)

        self.later(write, spool=row)
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
                "reason": reason, "requested_by_id": requested_by_id, "note": (note or "")[:200]}

    # --- operators' commands (read by the backstage thread, applied here) -------------------

    def apply(self, command: PlayerCommand) -> tuple[bool, str]:
        action, args = command.action, command.args or {}
        try:
            if action == PlayerCommand.Action.PLAY:
                self.stopped = False
                self.baseline = self.clock()
                if self.paused:
                    return self.apply_pause(False)
                if self.on_air is None:
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
                    self.finish(PlayLog.Outcome.INTERRUPTED, "stopped by an operator")
                    self.engine.stop()
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
                length = self.on_air.entry.length
                if length is not None and float(args.get("seconds", 0)) >= length:
                    # The API checks too, but the item may have changed since: never report it done.
                    return False, f"beyond the end of the item ({length:.1f} s)"
                self.engine.seek(self.on_air.entry.cue_in + float(args.get("seconds", 0)))
                self.crossfaded = self.on_air.uid  # a seeked item joins the next end to end
                self.on_air.heard_synced = True  # its start is now where the seek puts it
                self.on_air.started_mono = self.clock() - float(args.get("seconds", 0))
                self.on_air.paused_for = 0.0
                self.on_air.resumed_mono = self.clock()
                return True, "seeked"
            if action == PlayerCommand.Action.VOLUME:
                # A ramp the loop advances: the on-air thread never sleeps through an item's end.
                self.engine.ramp_volume(int(args["volume"]), fade_ms=int(args.get("fade_ms", FADE_MS)))
                volume = self.engine.volume
                self.later(lambda: PlayerState.objects.filter(station=self.station).update(volume=volume))
                return True, f"volume {volume}"
            if action == PlayerCommand.Action.PLAY_NOW:
                wanted = args.get("queue_item")
                entry = next((e for e in self.upcoming if e.queue_item_id == wanted), None)
                if entry is None:
                    return False, "the requested item is no longer queued"
                self.upcoming.remove(entry)
                self.consumed.append(wanted)
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
        now = self.clock()
        if paused or not self.engine.resume_by_restart:
            self.engine.pause(paused)
        else:
            entry, heard = self.on_air.entry, self.heard(self.on_air, now)
            try:
                media = self.engine.prepare(entry.path, cue_in=entry.cue_in + heard, cue_out=entry.cue_out,
                                            duration=entry.duration)
                self.on_air.generation = self.engine.start(media, gain_db=self.engine.item_gain_db)
            except (FileNotFoundError, RuntimeError) as exc:
                return False, f"could not resume: {exc}"
        self.paused = paused
        if paused:
            self.on_air.paused_at = now
        elif self.on_air.paused_at is not None:
            self.on_air.paused_for += now - self.on_air.paused_at
            self.on_air.paused_at = None
            self.on_air.resumed_mono = now
        self.baseline = now
        self.later(lambda: PlayerState.objects.filter(station=self.station).update(paused=paused))
        self._beacon()
        return True, "paused" if paused else "resumed"

    # --- liveness, status, alerts ------------------------------------------------------------

    def report_position(self, now: float) -> None:
        """The position for the database (latest only, once a second) and the local beacon."""
        self._beacon()
        if self.on_air is None or now - self.status.last_position_write < 1.0:
            return
        self.status.last_position_write = now
        position, paused = round(self.heard(self.on_air, now), 2), self.paused
        self.backstage.set_position(lambda: PlayerState.objects.filter(station=self.station).update(
            position=position, paused=paused, updated_at=timezone.now()))

    def _beacon(self) -> None:
        if self.beacon is None:
            return
        on_air = self.on_air
        if on_air is None:
            self.beacon.state = {"uid": None}
            return
        self.beacon.state = {"uid": str(on_air.uid), "track_id": on_air.entry.track_id,
                             "started_at": on_air.started_at.isoformat(), "note": on_air.entry.note,
                             "played": round(self.heard(on_air, self.clock()), 3), "paused": self.paused}

    def status_state(self) -> tuple:
        """What a status says apart from the clock: a new value is news for every client."""
        on_air = self.on_air
        # (started_mono less the heard-start correction: that correction alone is no news)
        return (on_air.uid if on_air else None, on_air.started_mono - on_air.heard_delta if on_air else None,
                self.paused,
                self.stopped, self.engine.volume, self.backstage.db_down_since is not None)

    def broadcast(self, *, force: bool = False) -> bool:
        """Send the status when it changed (or `force`), else every STATUS_KEEPALIVE s. True if sent.

        Cheap when there is nothing to say (a tuple compared each turn); the message is
        encoded and sent on the channel loop's thread, never this one.
        """
        now = self.clock()
        state = self.status_state()
        quiet = state == self.status.last_state and now - self.status.last_broadcast < STATUS_KEEPALIVE
        if not force and (quiet or self.on_air is None and self.join_at is not None):
            return False  # nothing new, or between two items of a join (the next one says it all)
        self.status.last_broadcast, self.status.last_state = now, state
        status = self.status_data()
        station_notify(self.slug, MessageType.PLAYBACK_STATUS, status)
        services.now_playing_publish(self.station, status)  # the REST now-playing's copy
        return True

    def status_data(self) -> dict[str, Any]:
        """The live status, as `playback.services.playback_snapshot` without the queue (docs/api.md):
        the queue goes out in `queue_update` when it changes."""
        on_air = self.on_air
        current = None
        if on_air is not None:
            entry = on_air.entry
            current = {"id": entry.track_id, "title": entry.title, "artist": entry.artist, "kind": entry.kind,
                       "duration": entry.length, "cue_in": entry.cue_in, "cue_out": entry.cue_out,
                       "reason": entry.reason, "started_at": on_air.started_at.isoformat(),
                       "position": round(self.heard(on_air, self.clock()), 2)}
        now = timezone.now().isoformat()
        worker = {"up": True, "heartbeat_at": now, "started_at": self.started_at.isoformat()}
        return {"station": self.slug, "server_time": now, "worker": worker, "is_playing": on_air is not None,
                "paused": self.paused, "stopped": self.stopped, "current": current,
                "volume": self.engine.volume,
                "database": "down" if self.backstage.db_down_since is not None else "up"}

    def dead_air_for(self, now: float) -> float:
        """Seconds the listener has heard nothing, outside pauses and stops."""
        if self.stopped or self.paused:
            return 0.0
        silent = self.engine.silent_for(now)
        if silent is None:  # the output cannot tell: nothing on air is the best we know
            return 0.0 if self.on_air is not None or self.status.silence_since is None \
                else now - max(self.status.silence_since, self.baseline)
        return max(0.0, min(silent, now - self.baseline))

    def check_silence(self, now: float) -> None:
        silent = self.dead_air_for(now)
        if silent < 0.5:
            if self.status.dead_air_since is not None:
                logger.warning("station=%s audio back after %.1f s of dead air", self.slug,
                               now - self.status.dead_air_since)
                self.status.dead_air_since, self.status.silence_alerted = None, False
                self.backstage.set_lease_status({"dead_air_since": None, "dead_air_reason": None},
                                                beat_now=True)
            return
        if self.status.dead_air_since is None:
            self.status.dead_air_since = now - silent
        if self.status.silence_alerted or silent < self.station.silence_alert_seconds:
            return
        self.status.silence_alerted = True
        since = timezone.now() - timedelta(seconds=silent)
        station, on_air = self.station, self.on_air
        playing = f"“{on_air.entry.title}” is on air but no audio leaves the engine" if on_air else ""
        self.backstage.set_lease_status({"dead_air_since": since.isoformat(), "dead_air_reason": playing},
                                        beat_now=True)

        def alert() -> None:
            reason = playing or services.dead_air_reason(station)
            with translation.override(station.language):
                message = _("Dead air: nothing heard for %(seconds)d s. %(reason)s") % {
                    "seconds": silent, "reason": reason}
            logger.error("station=%s %s", station.slug, message)
            notification_post(station=station, level=Notification.Level.ERROR, source="playback",
                              message=message[:500])
            with self.backstage.lock:
                if self.backstage.lease_status:
                    self.backstage.lease_status["dead_air_reason"] = str(reason)

        self.later(alert)

    def check_stream(self, now: float) -> None:
        """The Icecast stream: reported down on the heartbeat (and `/healthz`) after STREAM_GRACE without
        a source connection, and up again when it reconnects."""
        if now - self.stream_checked < 1.0:
            return
        self.stream_checked = now
        state = self.engine.stream_state()
        if state is None:
            return
        down_for = time.time() - state["down_since"] if state["down_since"] else 0.0
        down = down_for >= STREAM_GRACE
        if down == self.stream_down:
            return
        self.stream_down = down
        if down:
            since = datetime.fromtimestamp(state["down_since"], tz=UTC)
            logger.error("station=%s the Icecast stream is down since %s: %s", self.slug, since.isoformat(),
                         state["last_error"] or "not connected")
            self.backstage.set_lease_status({"stream_down_since": since.isoformat(),
                                             "stream_error": state["last_error"]}, beat_now=True)
        else:
            logger.warning("station=%s the Icecast stream is back", self.slug)
            self.backstage.set_lease_status({"stream_down_since": None, "stream_error": None}, beat_now=True)

    def close(self, deadline: float | None = None) -> None:
        """Stop: log what was on air, write what can be written before `deadline`, keep the rest."""
        deadline = deadline if deadline is not None else time.monotonic() + 1.5
        if self.on_air is not None:
            self.finish(PlayLog.Outcome.INTERRUPTED, "playback worker stopped")
        self.engine.stop()
        if self.beacon is not None:
            self.beacon.state = {"uid": None}
            self.beacon.close()
        self.backstage.stop(deadline)
