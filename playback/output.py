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
import struct
import threading
import time
from collections import deque
from pathlib import Path

import vlc

logger = logging.getLogger(__name__)

RATE = 44100
CHANNELS = 2
FRAME_BYTES = 2 * CHANNELS
HEADER = struct.Struct("<8sIIHdq")
BLOCK = struct.Struct("<qi")
MAGIC = b"ONAIRREC"


def clock_us() -> int:
    """libvlc's clock (CLOCK_MONOTONIC, µs): the time base of amem's pts, shared by every process."""
    return int(vlc.libvlc_clock())


class Recorder:
    """Appends what was heard to an air-check file: one file per process, unbuffered (kill -9 safe)."""

    def __init__(self, folder: Path, slug: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        mono = clock_us()
        self.path = folder / f"{slug}-{mono}-{os.getpid()}.onair-rec"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self.fd, HEADER.pack(MAGIC, 1, RATE, CHANNELS, time.time(), mono))

    def write(self, due_us: int, pcm: bytes) -> None:
        os.write(self.fd, BLOCK.pack(due_us, len(pcm) // FRAME_BYTES) + pcm)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class PacedSink:
    """Plays `amem` buffers out at their due time; counts and optionally records them."""

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.recorder = recorder
        self.pending: deque[tuple[int, bytes]] = deque()
        self.cond = threading.Condition()
        self.paused_at: int | None = None
        self.closing = False
        self.last_heard = 0.0  # time.monotonic() when the last sample was played out
        self.frames_heard = 0
        self.thread = threading.Thread(target=self._run, name="playout", daemon=True)
        self.thread.start()

    # --- amem callbacks (VLC's threads) ---------------------------------------------------

    def play(self, pcm: bytes, pts_us: int) -> None:
        with self.cond:
            self.pending.append((pts_us, pcm))
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
            self.cond.notify()

    def drain(self) -> None:
        deadline = time.monotonic() + 2.0
        with self.cond:
            while self.pending and not self.closing and time.monotonic() < deadline:
                self.cond.wait(0.02)

    # --- play-out thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.closing and (not self.pending or self.paused_at is not None):
                    self.cond.wait(0.1)
                if self.closing:
                    return
                due, pcm = self.pending[0]
                wait = (due - clock_us()) / 1e6
                if wait > 0.0005:
                    self.cond.wait(min(wait, 0.05))
                    continue
                self.pending.popleft()
                self.cond.notify_all()
            self.frames_heard += len(pcm) // FRAME_BYTES
            self.last_heard = time.monotonic() + len(pcm) / FRAME_BYTES / RATE
            if self.recorder is not None:
                try:
                    self.recorder.write(due, pcm)
                except OSError:
                    logger.exception("air-check recording failed: recording stops, playback goes on")
                    self.recorder = None

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
