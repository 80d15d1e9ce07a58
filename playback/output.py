"""Where audio leaves the engine: a paced sink behind libvlc's `amem` output.

libvlc hands each decoded buffer to `amem` ~150 ms before it is due (FACTS.md).
`PacedSink` holds the buffers and plays them out at their due time on its own
thread, like a sound card: what it has played out is what a listener has heard.
That gives the worker's watchdog the truth ("when did the last sample leave
the engine?", `last_heard`), independent of what the player says about itself,
and, with a recording folder set, an air-check recording of every sample with
the instant it was heard (format: `playback.aircheck`).

The callbacks run in VLC's threads: they only touch this object's own state.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

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


class PacedSink:
    """Plays `amem` buffers out at their due time; counts and optionally records them."""

    def __init__(self, recorder: Recorder | None = None, *, latency: float = 0.1) -> None:
        self.recorder = recorder
        # Like a sound card's buffer: buffers are heard `latency` after libvlc's due time,
        # so a decoder held up by a busy machine has that much more time before a gap.
        self.latency_us = int(latency * 1e6)
        self.cursor = 0
        self.pending: deque[tuple[int, bytes]] = deque()
        self.cond = threading.Condition()
        self.paused_at: int | None = None
        self.closing = False
        self.last_heard = 0.0  # time.monotonic() when the last sample was played out
        self.frames_heard = 0
        # A timed start (`gate`): the new item's first buffer is heard at `gate_at` exactly, by
        # holding it (and every buffer after it) back by `shift_us`.
        self.gate_at: int | None = None
        self.shift_us = 0
        self.gated: tuple[int, int] | None = None  # (first buffer's due + latency, heard at) of the last gate
        self.thread = threading.Thread(target=self._run, name="playout", daemon=True)
        self.thread.start()

    # --- amem callbacks (VLC's threads) ---------------------------------------------------

    def play(self, pcm: bytes, pts_us: int) -> None:
        with self.cond:
            if self.gate_at is not None:
                natural = pts_us + self.latency_us
                self.shift_us = max(0, self.gate_at - natural)
                self.gated = (natural, natural + self.shift_us)
                self.gate_at = None
            self.pending.append((pts_us + self.shift_us, pcm))
            self.cond.notify()

    def gate(self, at_us: int) -> None:
        """The next buffer is the first of an item that must be heard at `at_us` (libvlc clock).

        What is still pending of the item before and would sound at or after `at_us` is never
        heard (it is being faded out). The new item is held back to `at_us`; if it comes too late
        to make it, it is heard as soon as it comes (`gated` tells which).
        """
        with self.cond:
            def ends(due: int, pcm: bytes) -> int:
                return due + self.latency_us + len(pcm) * 1_000_000 // (FRAME_BYTES * RATE)
            self.pending = deque((due, pcm) for due, pcm in self.pending if ends(due, pcm) <= at_us)
            self.gate_at, self.gated = at_us, None
            self.cond.notify()

    def pause(self, pts_us: int) -> None:
        with self.cond:
            self.paused_at = clock_us()

    def resume(self, pts_us: int) -> None:
        with self.cond:
            if self.paused_at is not None:
                shift = clock_us() - self.paused_at
                self.pending = deque((due + shift, pcm) for due, pcm in self.pending)
            self.paused_at = None
            self.cond.notify()

    def flush(self, pts_us: int) -> None:
        with self.cond:
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
                while not self.closing and (not self.pending or self.paused_at is not None):
                    self.cond.wait(0.1)
                if self.closing:
                    return
                due, pcm = self.pending[0]
                # Like a sound card: a buffer due before the previous one has ended plays right
                # after it (VLC's timelines overlap by a few ms at joins), a later one after a gap.
                at = max(due + self.latency_us, cursor)
                now = clock_us()
                if at - now > 500:
                    self.cond.wait(min((at - now) / 1e6, 0.05))
                    continue
                if now - at > 50_000:
                    at = now  # handed over too late: an underrun, heard from now on
                self.pending.popleft()
                self.cond.notify_all()
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

    def ahead(self) -> float:
        """Seconds until everything handed over so far has been heard (0 when nothing waits)."""
        with self.cond:
            end = self.cursor
            if self.pending:
                due, pcm = self.pending[-1]
                end = max(end + sum(len(p) for _, p in self.pending) * 1_000_000 // (FRAME_BYTES * RATE),
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
