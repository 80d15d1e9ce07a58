"""The VLC engine: one libvlc instance and one media player, driven from one thread.

VLC events are never acted on inside their callbacks (that deadlocks libvlc, see
FACTS.md): each callback only puts a small tuple on the worker's queue, and the
worker thread handles it.

Gains: each item plays at its own gain (loudness normalisation, playback/loudness.py) under the
master level (the operator's volume, fades). Where the audio leaves through the paced sink
(headless, Icecast: `mixing`), both are applied there, per sample, at the instant they are heard,
and the stream gets exactly that. On the sound card (VLC's own output) they go to the equalizer's
pre-amplifier, which acts on what VLC decodes (audio_set_volume does nothing on `dummy`).
"""

from __future__ import annotations

import ctypes
import logging
import queue
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vlc

from playback.icecast import IcecastOutput
from playback.output import PacedSink, Recorder, clock_us

logger = logging.getLogger(__name__)

# Flat equalizer at 0 dB preamp is −12 dB; +12 dB is unity; −20 dB is the floor.
PREAMP_UNITY_DB = 12.0
PREAMP_FLOOR_DB = -20.0
END_TOLERANCE = 0.05  # seconds: a cue-out this close to the end is the end


@dataclass(frozen=True)
class OutputConfig:
    kind: str = "dummy"  # soundcard | dummy | amem | icecast
    device: str = ""
    icecast_url: str = ""  # source:PASSWORD@HOST:PORT/MOUNT
    bitrate: int = 128
    gather: bool = True  # local outputs: keep one audio output across items


def volume_to_preamp(volume: int) -> float:
    volume = max(0, min(100, volume))
    if volume == 0:
        return PREAMP_FLOOR_DB
    return PREAMP_FLOOR_DB + (PREAMP_UNITY_DB - PREAMP_FLOOR_DB) * volume / 100


def volume_to_level(volume: int) -> float:
    """The operator's volume (0–100) as a linear level: the same dB curve as the pre-amplifier's
    (100 is unity, each step 0.32 dB down), with 0 silent."""
    volume = max(0, min(100, volume))
    if volume == 0:
        return 0.0
    return float(10 ** ((volume_to_preamp(volume) - PREAMP_UNITY_DB) / 20))


class Engine:
    """`sink` is where audio leaves the engine: a `PacedSink` for the dummy and Icecast
    outputs (it knows when the last sample was heard, and can record an air check),
    the caller's sink for `amem`, none for the sound card (VLC's own audio output)."""

    def __init__(self, config: OutputConfig, events: queue.Queue, *, file_caching_ms: int = 0,
                 audio_sink: Any = None, record_dir: Path | None = None, name: str = "onair") -> None:
        self.config = config
        self.events = events
        args = ["--no-video", "--quiet", "--no-stats", f"--file-caching={file_caching_ms}",
                "--no-metadata-network-access"]
        if config.kind in ("dummy", "amem", "icecast"):
            args.append("--aout=amem")
        if audio_sink is None and config.kind in ("dummy", "icecast"):
            outputs = [IcecastOutput(config.icecast_url, bitrate=config.bitrate, name=name)] \
                if config.kind == "icecast" else []
            audio_sink = PacedSink(Recorder(record_dir, name) if record_dir else None, outputs=outputs)
        self.sink = audio_sink
        # Gains applied in the sink (per sample, as heard), or VLC's pre-amplifier (the sound card).
        self.mixing = audio_sink is not None and hasattr(audio_sink, "begin_item")
        self.item_gain_db = 0.0
        self.faded = False
        self.instance = vlc.Instance(args)
        if self.instance is None:
            raise RuntimeError("libvlc could not start (is libvlc5 with vlc-plugin-base installed?)")
        # Two decks when the sink mixes them (crossfades): one media player each, `current` on air.
        self.can_overlay = self.mixing and hasattr(audio_sink, "begin_overlay")
        self.players = [self.instance.media_player_new() for _ in range(2 if self.can_overlay else 1)]
        self.current = 0
        self.player_generations = [0] * len(self.players)
        self._amem_callbacks: list[tuple] = []
        for index, player in enumerate(self.players):
            if config.kind == "soundcard" and config.device:
                player.audio_output_device_set(None, config.device)
            if audio_sink is not None:
                self._attach_amem(audio_sink, player, index)
            manager = player.event_manager()
            for event_type, name in ((vlc.EventType.MediaPlayerEndReached, "end"),
                                     (vlc.EventType.MediaPlayerEncounteredError, "error"),
                                     (vlc.EventType.MediaPlayerPlaying, "playing")):
                manager.event_attach(event_type, self._on_event, name, index)
        self.equalizer = vlc.AudioEqualizer()
        self.volume = 100
        self._set_preamp(volume_to_preamp(100))
        self.generation = 0
        self.ramp: tuple[float, float, float, float] | None = None
        # Timed starts: how long from play() to the first sample heard, as measured (µs).
        self.start_latencies: deque[int] = deque(maxlen=20)
        self.timed_start: tuple[int, int] | None = None  # (play() called, due) of the last timed start

    @property
    def player(self) -> vlc.MediaPlayer:
        """The deck on air."""
        return self.players[self.current]

    def _attach_amem(self, sink: Any, player: vlc.MediaPlayer, index: int = 0) -> None:
        """Hand every decoded PCM buffer to `sink` (benchmarks and tests capture the output).

        Format: S16N (native-endian signed 16-bit), 44.1 kHz, stereo interleaved.
        `sink.play(pcm: bytes, pts_us: int)` gets each buffer and the libvlc clock time
        (`vlc.libvlc_clock()`, µs) at which its first sample is due. Optional methods,
        called like a sound card's: `pause(pts_us)`, `resume(pts_us)`, `flush(pts_us)`
        (discard what is pending) and `drain()` (the item's audio is all handed over;
        a sound card returns once it has been heard, which is when VLC reports the end).
        They run in VLC's threads: never call libvlc from them.
        """
        cb = vlc.CallbackDecorators

        decks = self.can_overlay  # the sink tells the decks apart

        def play(_opaque, samples, count, pts) -> None:
            if decks:
                sink.play(ctypes.string_at(samples, count * 4), pts, index)
            else:
                sink.play(ctypes.string_at(samples, count * 4), pts)

        def with_pts(name: str, decorator):
            method = getattr(sink, name, None)
            if method is None:
                return None
            if decks and name == "flush":
                return decorator(lambda _opaque, pts: method(pts, index))
            return decorator(lambda _opaque, pts: method(pts))

        drain = getattr(sink, "drain", None)
        # Kept on the engine: ctypes callbacks must outlive the player.
        callbacks = (cb.AudioPlayCb(play), with_pts("pause", cb.AudioPauseCb),
                     with_pts("resume", cb.AudioResumeCb), with_pts("flush", cb.AudioFlushCb),
                     cb.AudioDrainCb(lambda _opaque: drain()) if drain else None)
        self._amem_callbacks.append(callbacks)
        player.audio_set_callbacks(*callbacks, None)
        player.audio_set_format("S16N", 44100, 2)

    def _on_event(self, event, name: str, index: int = 0) -> None:
        # Inside libvlc's thread: hand over, never call back into libvlc here. The generation is that
        # of the media on this deck: an outgoing deck's end after a crossfade is about an old media.
        self.events.put(("vlc", name, self.player_generations[index], time.monotonic()))

    def _take_deck(self, index: int, *, stop_other: bool = True) -> None:
        """Deck `index` goes on air with a new media; the other deck (a crossfade's tail) stops, unless
        this is the crossfade's start."""
        if stop_other:
            self.current = index
            self._stop_other()
        self.current = index
        self.generation += 1
        self.player_generations[index] = self.generation

    def _set_preamp(self, db: float) -> None:
        if self.mixing:
            return
        self.equalizer.set_preamp(max(PREAMP_FLOOR_DB, min(20.0, db + self.item_gain_db)))
        self.player.set_equalizer(self.equalizer)

    def _begin_item(self, gain_db: float) -> None:
        """The item about to start plays at `gain_db`, at the operator's volume (after any fade)."""
        self.item_gain_db = gain_db
        self.ramp = None
        if self.mixing:
            extra = {"player": self.current} if self.can_overlay else {}
            self.sink.begin_item(float(10 ** (gain_db / 20)), master=volume_to_level(self.volume),
                                 drop_previous=self.faded, token=self.generation, **extra)
        else:
            self._set_preamp(volume_to_preamp(self.volume))
        self.faded = False

    def prepare(self, path: Path, *, cue_in: float = 0.0, cue_out: float | None = None,
                duration: float | None = None) -> vlc.Media:
        """A media ready to start at once (options set, file checked)."""
        if not path.is_file():
            raise FileNotFoundError(f"audio file not found: {path}")
        options = []
        if cue_in > 0:
            options.append(f"start-time={cue_in:.3f}")
        # A stop-time at the very end makes VLC drop the file's last (partial) frame:
        # only cut when the cue really is before the end.
        if cue_out and not (duration and cue_out >= duration - END_TOLERANCE):
            options.append(f"stop-time={cue_out:.3f}")
        if self.config.gather or self.config.kind == "icecast":
            # One audio output kept across items (#gather:display): the next item's
            # audio queues behind the current one instead of waiting for the output
            # to drain, close and reopen at every join.
            options += ["sout=#gather:display", "sout-keep"]
        media = self.instance.media_new_path(str(path))
        for option in options:
            media.add_option(f":{option}")
        return media

    def start(self, media: vlc.Media, *, gain_db: float = 0.0) -> int:
        """Play `media` now at `gain_db` and the operator's volume, replacing whatever plays (cut at once
        if it was faded out). Returns its generation number."""
        self._take_deck(self.current)
        self.player.set_media(media)
        self._begin_item(gain_db)
        if self.player.play() == -1:
            raise RuntimeError("VLC refused to play the media")
        return self.generation

    # --- timed starts (hard starts of the programme) -----------------------------------

    DEFAULT_START_LEAD = 0.5  # s: before a start's due time, play() is called this early

    def start_lead(self) -> float:
        """How early to call `start_at` before the due time: the slowest recent start, plus margin.

        The sink holds an early item back to its due time, so early is exact and late is late (the
        Icecast stream is fed from the sink: the same holds there).
        """
        if not self.start_latencies:
            return self.DEFAULT_START_LEAD
        # A start that takes longer than the lead is late by the difference: keep a wide margin
        # (a busy machine slows VLC's start); early costs only a moment more of the fade's silence.
        return min(1.5, max(self.DEFAULT_START_LEAD, 1.25 * max(self.start_latencies) / 1e6 + 0.1))

    def start_at(self, media: vlc.Media, due_us: int, *, gain_db: float = 0.0) -> int:
        """Play `media` so that its first sample is heard at `due_us` (libvlc clock), replacing
        whatever plays. Exact on outputs with a paced sink (dummy, Icecast); on the
        sound card it starts now, `start_lead()` early."""
        self.note_start_latency()
        self._take_deck(self.current)
        self.player.set_media(media)
        gate = getattr(self.sink, "gate", None)
        if gate is not None:
            gate(due_us)
            self.faded = False  # the gate drops what of the item before would sound after due_us
        self._begin_item(gain_db)
        self.timed_start = (clock_us(), due_us)
        if self.player.play() == -1:
            self.timed_start = None
            raise RuntimeError("VLC refused to play the media")
        return self.generation

    def start_overlay(self, media: vlc.Media, at_us: int, *, gain_db: float = 0.0, fade_ms: float) -> int:
        """A crossfade: `media` starts on the other deck so that its first sample is heard at `at_us`
        (libvlc clock), fading in over `fade_ms` while the item on air fades out and ends. Returns the
        new media's generation; the engine's controls (pause, seek, position) then act on it."""
        other = 1 - self.current
        self._take_deck(other, stop_other=False)
        self.item_gain_db = gain_db
        self.player.set_media(media)
        self.sink.begin_overlay(other, at_us, float(10 ** (gain_db / 20)), fade_ms, token=self.generation)
        if self.player.play() == -1:
            raise RuntimeError("VLC refused to play the media")
        return self.generation

    def heard_start(self, generation: int) -> float | None:
        """When the first sample of the media of `generation` was heard (libvlc clock, s), once known."""
        first = getattr(self.sink, "first_heard", None)
        if first is None or first[0] != generation:
            return None
        return first[1] / 1e6

    def note_start_latency(self) -> tuple[int, int] | None:
        """(due, heard) of the last timed start once its first sample was heard; learns the latency."""
        gated = getattr(self.sink, "gated", None)
        if self.timed_start is None or gated is None:
            return None
        called, _due = self.timed_start
        self.timed_start = None
        self.start_latencies.append(max(0, gated[0] - called))
        return gated

    def fade_to_silence(self, fade_ms: int, *, end_us: int | None = None) -> None:
        """Ramp to silence without waiting; the volume setting is kept. When mixing, `end_us` (libvlc
        clock) is when the silence is reached as heard: a hard start's instant, so what plays is
        faded right up to the next item's first sample."""
        if self.mixing and end_us is not None:
            self.ramp = None
            self.sink.ramp(0.0, fade_ms, begin_us=max(clock_us(), end_us - fade_ms * 1000))
        else:
            keep = self.volume
            self.ramp_volume(0, fade_ms=fade_ms)
            self.volume = keep
        self.faded = True

    def stop(self) -> None:
        self.generation += 1
        for player in self.players:
            player.stop()

    @property
    def resume_by_restart(self) -> bool:
        """Under `#gather`, VLC's pause never reaches the audio output and the audio after a
        resume is dropped as late (measured): resume restarts the item where it was heard."""
        return self.config.kind == "icecast" or self.config.gather

    def pause(self, paused: bool) -> None:
        if paused:
            self._stop_other()  # a crossfade's outgoing tail ends with the pause
        self.player.set_pause(1 if paused else 0)
        flush = getattr(self.sink, "flush", None)
        if paused and self.resume_by_restart and flush is not None:
            # What was handed over but not heard is heard after the resume instead.
            if self.can_overlay:
                flush(0, self.current)
            else:
                flush(0)

    def _stop_other(self) -> None:
        for index, player in enumerate(self.players):
            if index != self.current and player.get_state() in (
                    vlc.State.Playing, vlc.State.Paused, vlc.State.Opening, vlc.State.Buffering):
                player.stop()

    def seek(self, seconds: float) -> None:
        self.player.set_time(int(max(0.0, seconds) * 1000))

    def position(self) -> float:
        ms = self.player.get_time()
        return max(0.0, ms / 1000) if ms is not None else 0.0

    def is_ended(self) -> bool:
        return self.player.get_state() in (vlc.State.Ended, vlc.State.Error)

    def set_volume(self, volume: int, *, fade_ms: int = 0) -> None:
        """Move to `volume` (0–100) over `fade_ms` (blocking: it returns once the fade is heard)."""
        self.ramp = None
        if self.mixing:
            self.sink.ramp(volume_to_level(volume), fade_ms)
            if fade_ms:
                time.sleep(fade_ms / 1000)
            self.volume = max(0, min(100, volume))
            return
        start, target = volume_to_preamp(self.volume), volume_to_preamp(volume)
        steps = max(1, fade_ms // 20)
        for step in range(1, steps + 1):
            self._set_preamp(start + (target - start) * step / steps)
            if fade_ms:
                time.sleep(fade_ms / 1000 / steps)
        self.volume = max(0, min(100, volume))

    def ramp_volume(self, volume: int, *, fade_ms: int) -> None:
        """Move to `volume` over `fade_ms` without waiting: `ramp_step()` advances it (the sink does,
        per sample, when it mixes)."""
        if self.mixing:
            self.ramp = None
            self.sink.ramp(volume_to_level(volume), fade_ms)
            self.volume = max(0, min(100, volume))
            return
        self.ramp = (volume_to_preamp(self.volume), volume_to_preamp(volume), time.monotonic(),
                     max(0.001, fade_ms / 1000))
        self.volume = max(0, min(100, volume))
        self.ramp_step()

    def ramp_step(self) -> bool:
        """Apply the volume ramp's current step; True while it is still moving."""
        if self.ramp is None:
            return False
        start, target, began, seconds = self.ramp
        share = min(1.0, (time.monotonic() - began) / seconds)
        self._set_preamp(start + (target - start) * share)
        if share >= 1.0:
            self.ramp = None
        return self.ramp is not None

    def fade_out(self, fade_ms: int) -> None:
        """A short fade to silence before an interruption; the volume setting is kept."""
        keep = self.volume
        self.set_volume(0, fade_ms=fade_ms)
        self.volume = keep
        self.faded = True

    def restore_volume(self, fade_ms: int = 50) -> None:
        """Back to the operator's volume after a fade that was not followed by a new item."""
        self.ramp = None
        self.faded = False
        if self.mixing:
            self.sink.ramp(volume_to_level(self.volume), fade_ms)
        else:
            self._set_preamp(volume_to_preamp(self.volume))

    def stream_state(self) -> dict | None:
        """The Icecast output's state (connected, down_since, last_error, …), or None without one."""
        for output in getattr(self.sink, "outputs", ()):
            state = getattr(output, "state", None)
            if state is not None:
                return state()
        return None

    def ahead(self) -> float:
        """Seconds of audio handed to the output and not yet heard (0 when the output cannot tell)."""
        ahead = getattr(self.sink, "ahead", None)
        return ahead() if ahead else 0.0

    def silent_for(self, now: float) -> float | None:
        """Seconds since audio last left the engine; None when the output cannot tell (sound card)."""
        silent = getattr(self.sink, "silent_for", None)
        return silent(now) if silent else None

    def release(self) -> None:
        for player in self.players:
            player.stop()
            player.release()
        self.instance.release()
        close = getattr(self.sink, "close", None)
        if close:
            close()
