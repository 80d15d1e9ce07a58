"""Where audio leaves the engine: a paced sink behind libvlc's `amem` output.

libvlc hands each decoded buffer to `amem` ~150 ms before it is due (FACTS.md).
`PacedSink` holds the buffers and plays them out at their due time on its own
thread, like a sound card: what it has played out is what a listener has heard.
That gives the worker's watchdog the truth ("when did the last sample leave
the engine?", `last_heard`), independent of what the player says about itself,
and, with a recording folder set, an air-check recording of every sample with
the instant it was heard (format: `playback.aircheck`).

The sink is also where the station's sound is shaped, at the instant it is heard, so it is the
same on every output fed from it (headless, Icecast): each item's own gain (loudness to the
station's target, `begin_item`), and the master gain (the operator's volume and the fades of
skip, stop, play-now and hard starts, `ramp`), as a per-sample envelope (numpy).

The callbacks run in VLC's threads: they only touch this object's own state.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import vlc

from playback.aircheck import SUFFIX, encode_block, encode_header

logger = logging.getLogger(__name__)

RATE = 44100
CHANNELS = 2
FRAME_BYTES = 2 * CHANNELS


def clock_us() -> int:
    """libvlc's clock (CLOCK_MONOTONIC, µs): the time base of amem's pts, shared by every process."""
    return int(vlc.libvlc_clock())


class Recorder:
    """Appends what was heard to an air-check file: one file per process, unbuffered (kill -9 safe)."""

    def __init__(self, folder: Path, slug: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        mono = clock_us()
        self.path = folder / f"{slug}-{mono}-{os.getpid()}{SUFFIX}"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self.fd, encode_header(wall_time=time.time(), mono_us=mono, rate=RATE, channels=CHANNELS))

    def write(self, due_us: int, pcm: bytes) -> None:
        os.write(self.fd, encode_block(due_us, pcm, channels=CHANNELS))

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class Master:
    """The master gain: a level, or a linear ramp between two levels over an interval of play-out time."""

    def __init__(self) -> None:
        self.start, self.target = 1.0, 1.0
        self.began_us, self.length_us = 0, 0
        self.equal_power = False

    def ramp(self, target: float, now_us: int, length_us: int, *, equal_power: bool = False) -> None:
        """Linear by default; `equal_power` (a crossfade's halves: sine in, cosine out) keeps the sum of
        two uncorrelated sources at constant loudness."""
        current = self.at(now_us)
        self.start, self.target, self.began_us, self.length_us = current, target, now_us, max(0, length_us)
        self.equal_power = equal_power

    def _curve(self, share):
        if not self.equal_power:
            return share
        if self.target >= self.start:
            return np.sin(share * (np.pi / 2))
        return 1.0 - np.cos(share * (np.pi / 2))

    def set(self, level: float) -> None:
        self.start = self.target = level
        self.length_us = 0

    def at(self, t_us: int) -> float:
        if self.length_us <= 0 or t_us >= self.began_us + self.length_us:
            return self.target
        if t_us <= self.began_us:
            return self.start
        share = (t_us - self.began_us) / self.length_us
        return float(self.start + (self.target - self.start) * self._curve(share))

    def envelope(self, at_us: int, frames: int) -> float | np.ndarray:
        """The gain for `frames` samples heard from `at_us`: one number when it does not move."""
        end_us = at_us + frames * 1_000_000 // RATE
        if self.length_us <= 0 or at_us >= self.began_us + self.length_us or end_us <= self.began_us:
            return self.at(at_us)
        t = at_us + np.arange(frames, dtype=np.float64) * (1_000_000 / RATE)
        share = np.clip((t - self.began_us) / self.length_us, 0.0, 1.0)
        return (self.start + (self.target - self.start) * self._curve(share)).astype(np.float32)


def apply_gain(pcm: bytes, gain: float | np.ndarray) -> bytes:
    """S16 stereo `pcm` times `gain` (a number, or one value per frame), saturating, never wrapping."""
    if isinstance(gain, float | int) and gain == 1.0:
        return pcm
    return mix_out(np.frombuffer(pcm, dtype=np.int16).reshape(-1, CHANNELS).astype(np.float32), gain)


def mix_out(samples: np.ndarray, gain: float | np.ndarray) -> bytes:
    """A float32 mix (frames × channels) times `gain`, saturated to S16."""
    samples = samples * (gain[:, None] if isinstance(gain, np.ndarray) else np.float32(gain))
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16).tobytes()


class PacedSink:
    """Plays `amem` buffers out at their due time, with their gains; counts and optionally records them.

    `outputs` get every buffer as it is played out (`feed(at_us, pcm)`), and `idle(now_us)` while
    nothing plays: the Icecast encoder (playback/icecast.py).
    """

    def __init__(self, recorder: Recorder | None = None, *, latency: float = 0.1,
                 outputs: list[Any] | None = None) -> None:
        self.recorder = recorder
        self.outputs = list(outputs or [])
        self.master = Master()
        self.item_gain = 1.0  # of the item whose buffers are arriving
        self.next_item: tuple | None = None  # (gain, master level, token) for the item's first buffer
        self.first_heard: tuple[object, int] | None = None  # (token, µs) the item on air was first heard
        # Crossfades: a second player (deck) whose buffers are mixed into the main deck's from its gate
        # on, each deck under its own envelope; when the main deck runs dry the other becomes main.
        self.main_player = 0
        self.main_env = Master()
        self.overlay_player: int | None = None
        self.overlay: deque[tuple[int, bytes, float]] = deque()  # (due incl. shift, pcm, gain)
        self.overlay_gate: int | None = None
        self.overlay_shift_us = 0
        self.overlay_gain = 1.0
        self.overlay_env = Master()
        # Like a sound card's buffer: buffers are heard `latency` after libvlc's due time,
        # so a decoder held up by a busy machine has that much more time before a gap.
        self.latency_us = int(latency * 1e6)
        self.cursor = 0
        # (due, pcm, item gain, master level to set when it is heard: an item's first buffer)
        self.pending: deque[tuple[int, bytes, float, float | None]] = deque()
        self.cond = threading.Condition()
        self.paused_at: int | None = None
        self.closing = False
        self.last_heard = 0.0  # time.monotonic() when the last sample was played out
        self.underruns = 0  # buffers handed over too late to be heard on time
        self.underrun_logged = -1e9
        self.frames_heard = 0
        # A timed start (`gate`): the new item's first buffer is heard at `gate_at` exactly, by
        # holding it (and every buffer after it) back by `shift_us`.
        self.gate_at: int | None = None
        self.shift_us = 0
        self.gated: tuple[int, int] | None = None  # (first buffer's due + latency, heard at) of the last gate
        self.thread = threading.Thread(target=self._run, name="playout", daemon=True)
        self.thread.start()

    # --- amem callbacks (VLC's threads) ---------------------------------------------------

    def play(self, pcm: bytes, pts_us: int, player: int = 0) -> None:
        with self.cond:
            if player != self.main_player:
                if player == self.overlay_player:
                    if self.overlay_gate is not None:
                        self.overlay_shift_us = max(0, self.overlay_gate - (pts_us + self.latency_us))
                        self.overlay_gate = None
                    self.overlay.append((pts_us + self.overlay_shift_us, pcm, self.overlay_gain))
                    self.cond.notify()
                return  # a player that was replaced: what it still hands over is never heard
            if self.gate_at is not None:
                natural = pts_us + self.latency_us
                self.shift_us = max(0, self.gate_at - natural)
                self.gated = (natural, natural + self.shift_us)
                self.gate_at = None
            level = None
            if self.next_item is not None:
                self.item_gain, *level = self.next_item  # level: (master level, token)
                self.next_item = None
            self.pending.append((pts_us + self.shift_us, pcm, self.item_gain, level))
            self.cond.notify()

    # --- gains (the engine's thread) ----------------------------------------------------------

    def begin_item(self, gain: float, *, master: float | None = None, drop_previous: bool = False,
                   player: int = 0, token: object = None) -> None:
        """The next buffer of `player` is an item's first: it and the rest of the item play at `gain`, and
        the master level is set to `master` when it is heard (an item after a fade starts at the
        operator's volume). `drop_previous`: what is left of the items before (faded out) is never
        heard. A crossfade in progress ends: the other deck is dropped."""
        with self.cond:
            if drop_previous:
                self.pending.clear()
                self.shift_us = 0
            self._end_overlay()
            self.main_player = player
            self.main_env.set(1.0)
            self.next_item = (gain, master, token)
            self.cond.notify()

    def begin_overlay(self, player: int, at_us: int, gain: float, fade_ms: float, token: object = None) -> None:
        """A crossfade: `player`'s next buffer is the first of an item heard from `at_us`, fading in over
        `fade_ms` while the main deck fades out over the same time; then it becomes the main deck."""
        with self.cond:
            self._end_overlay()
            self.overlay_player, self.overlay_gate, self.overlay_gain = player, at_us, gain
            self.first_heard = (token, at_us)  # the gate holds its first sample to `at_us`
            length = int(fade_ms * 1000)
            self.overlay_env.set(0.0)
            self.overlay_env.ramp(1.0, at_us, length, equal_power=True)
            self.main_env.ramp(0.0, at_us, length, equal_power=True)
            self.cond.notify()

    def _end_overlay(self) -> None:
        self.overlay.clear()
        self.overlay_player, self.overlay_gate, self.overlay_shift_us = None, None, 0

    def _overlay_due(self, now: int) -> bool:
        return bool(self.overlay) and self.overlay[0][0] + self.latency_us - now <= 500

    def _swap(self) -> None:
        """The main deck ran dry with the other deck's audio due: the other deck is the main one now."""
        self.main_player, self.shift_us, self.item_gain = self.overlay_player, self.overlay_shift_us, \
            self.overlay_gain
        self.pending = deque((due, pcm, gain, None) for due, pcm, gain in self.overlay)
        self.main_env, self.overlay_env = self.overlay_env, Master()
        self._end_overlay()

    def _mix_overlay(self, at: int, samples: np.ndarray) -> None:
        """Add the other deck's samples heard in [at, at + len(samples)) into `samples` (float32)."""
        frames = len(samples)
        while self.overlay:
            o_due, o_pcm, o_gain = self.overlay[0]
            offset = round((o_due + self.latency_us - at) * RATE / 1_000_000)
            if offset >= frames:
                return
            o_frames = len(o_pcm) // FRAME_BYTES
            skip, start = max(0, -offset), max(0, offset)  # skip: came too late for its place
            count = max(0, min(frames - start, o_frames - skip))
            if count:
                o = np.frombuffer(o_pcm, dtype=np.int16).reshape(-1, CHANNELS)[skip:skip + count]
                env = self.overlay_env.envelope(at + start * 1_000_000 // RATE, count)
                if isinstance(env, np.ndarray):
                    samples[start:start + count] += o.astype(np.float32) * (env * np.float32(o_gain))[:, None]
                else:
                    samples[start:start + count] += o.astype(np.float32) * np.float32(env * o_gain)
            consumed = skip + count
            if consumed >= o_frames:
                self.overlay.popleft()
            else:
                self.overlay[0] = (o_due + consumed * 1_000_000 // RATE, o_pcm[consumed * FRAME_BYTES:], o_gain)
                return

    def ramp(self, level: float, ms: float, *, begin_us: int | None = None) -> None:
        """Move the master level to `level` over `ms` of what is heard from now, or from `begin_us`."""
        with self.cond:
            self.master.ramp(level, begin_us if begin_us is not None else clock_us(), int(ms * 1000))

    def level(self) -> float:
        with self.cond:
            return self.master.at(clock_us())

    def gate(self, at_us: int) -> None:
        """The next buffer is the first of an item that must be heard at `at_us` (libvlc clock).

        What is still pending of the item before and would sound at or after `at_us` is never
        heard (it is being faded out). The new item is held back to `at_us`; if it comes too late
        to make it, it is heard as soon as it comes (`gated` tells which).
        """
        with self.cond:
            # When each pending buffer will really be heard: back to back after the cursor, which runs
            # behind VLC's clock by what the joins since the last flush added (up to ~26 ms each, see
            # _play_out). Judged by due times alone, a buffer due before `at_us` could still be
            # sounding at `at_us` and hold the new item back by that much (measured: 44 ms median,
            # 208 ms at worst over 50 hard starts).
            kept: deque = deque()
            end = max(self.cursor, clock_us())
            for item in self.pending:
                end = max(item[0] + self.latency_us, end) + len(item[1]) * 1_000_000 // (FRAME_BYTES * RATE)
                if end > at_us:
                    break
                kept.append(item)
            self.pending = kept
            self._end_overlay()
            self.main_env.set(1.0)
            self.gate_at, self.gated = at_us, None
            self.cond.notify()

    def pause(self, pts_us: int) -> None:
        with self.cond:
            self.paused_at = clock_us()

    def resume(self, pts_us: int) -> None:
        with self.cond:
            if self.paused_at is not None:
                shift = clock_us() - self.paused_at
                self.pending = deque((due + shift, *rest) for due, *rest in self.pending)
            self.paused_at = None
            self.cond.notify()

    def flush(self, pts_us: int, player: int = 0) -> None:
        with self.cond:
            if player == self.overlay_player and player != self.main_player:
                self.overlay.clear()
            elif player == self.main_player:
                self.pending.clear()  # handed over but not yet heard: never heard
                self.shift_us = 0
            self.cond.notify()

    def drain(self) -> None:
        deadline = time.monotonic() + 2.0
        with self.cond:
            while self.pending and not self.closing and time.monotonic() < deadline:
                self.cond.wait(0.02)

    # --- play-out thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self.closing:
            try:
                self._play_out()
            except Exception:  # noqa: BLE001 - the output thread never dies of one buffer
                logger.exception("playout thread: a buffer failed; playing on")

    def _play_out(self) -> None:
        cursor = self.cursor  # µs: where the previous buffer ends, as heard
        while True:
            with self.cond:
                while not self.closing and ((not self.pending and not self._overlay_due(clock_us()))
                                            or self.paused_at is not None):
                    self.cond.wait(0.05 if not self.overlay else 0.002)
                    self._idle(clock_us())
                if self.closing:
                    return
                if not self.pending:
                    self._swap()
                    continue
                due, pcm, gain, level = self.pending[0]
                # Like a sound card: a buffer due before the previous one has ended plays right
                # after it (VLC's timelines overlap by a few ms at joins), a later one after a gap.
                at = max(due + self.latency_us, cursor)
                now = clock_us()
                if at - now > 500:
                    self.cond.wait(min((at - now) / 1e6, 0.05))
                    continue
                if now - at > 50_000:
                    at = now  # handed over too late: an underrun, heard from now on
                    self.underruns += 1
                    if time.monotonic() - self.underrun_logged > 30:
                        self.underrun_logged = time.monotonic()
                        logger.warning("output underrun: a buffer came %.0f ms late (%d underruns so far)",
                                       (now - due - self.latency_us) / 1000, self.underruns)
                self.pending.popleft()
                if level is not None:
                    master_level, token = level
                    if master_level is not None:
                        self.master.set(master_level)
                    self.first_heard = (token, at)
                frames = len(pcm) // FRAME_BYTES
                envelope = self.master.envelope(at, frames)
                deck = self.main_env.envelope(at, frames)
                if self.overlay or isinstance(deck, np.ndarray) or deck != 1.0:
                    samples = np.frombuffer(pcm, dtype=np.int16).reshape(-1, CHANNELS).astype(np.float32)
                    samples *= (deck * np.float32(gain))[:, None] if isinstance(deck, np.ndarray) \
                        else np.float32(deck * gain)
                    self._mix_overlay(at, samples)
                    pcm, gain = samples, 1.0
                self.cond.notify_all()
            if isinstance(pcm, np.ndarray):
                pcm = mix_out(pcm, envelope)
            elif isinstance(envelope, np.ndarray):
                pcm = apply_gain(pcm, envelope * np.float32(gain))
            else:
                pcm = apply_gain(pcm, float(envelope) * gain)
            # VLC starts the next item's timeline ~56 ms inside the last one's; the worker waits
            # 30 ms of it (JOIN_DELAY) and plays the rest back to back: the output then runs up to
            # ~26 ms per join behind VLC's clock until a skip, pause or stop empties it.
            frames = len(pcm) // FRAME_BYTES
            cursor = self.cursor = at + frames * 1_000_000 // RATE
            self.frames_heard += frames
            self.last_heard = time.monotonic() + frames / RATE
            if self.recorder is not None:
                try:
                    self.recorder.write(at, pcm)
                except OSError:
                    logger.exception("air-check recording failed: recording stops, playback goes on")
                    self.recorder = None
            for output in self.outputs:
                try:
                    output.feed(at, pcm)
                except Exception:  # noqa: BLE001 - an output's fault is its own, never the broadcast's
                    logger.exception("output %s failed on a buffer; playing on", type(output).__name__)

    def _idle(self, now_us: int) -> None:
        for output in self.outputs:
            try:
                output.idle(now_us)
            except Exception:  # noqa: BLE001
                logger.exception("output %s failed while idle", type(output).__name__)

    def ahead(self) -> float:
        """Seconds until everything handed over so far has been heard (0 when nothing waits)."""
        with self.cond:
            end = self.cursor
            if self.pending:
                due, pcm = self.pending[-1][:2]
                end = max(end + sum(len(p[1]) for p in self.pending) * 1_000_000 // (FRAME_BYTES * RATE),
                          due + self.latency_us + len(pcm) * 1_000_000 // (FRAME_BYTES * RATE))
        return max(0.0, (end - clock_us()) / 1e6)

    def silent_for(self, now: float) -> float:
        """Seconds since the last sample was heard (0 while a buffer is still sounding)."""
        return max(0.0, now - self.last_heard)

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join(1.0)
        if self.recorder is not None:
            self.recorder.close()
        for output in self.outputs:
            close = getattr(output, "close", None)
            if close:
                close()
