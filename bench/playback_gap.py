"""Playback gap benchmark: what a listener hears between two queued tracks, and command latency.

    uv run python bench/playback_gap.py [--tracks 12] [--seconds 2.0 3.0] [--commands 20]

Measures OnAir's own playback worker (`PlaybackWorker` driving `Engine`, the
production `step()` loop) on a private PostgreSQL and Redis started here, with
N generated MP3 sine tones of distinct frequencies (no leading or trailing
silence in the files, so any gap is the player's):

1. OnAir, in-process, `amem` output. Every PCM buffer VLC hands to the sound
   output is captured with its due time (pts, on the libvlc clock, which is the
   monotonic clock). The capture behaves like a sound card: its `drain` returns
   when the last sample handed over has been heard, as ALSA's does, and that is
   when VLC reports the end of the item. The buffers are laid on a timeline at
   their due times (digital silence where nothing was due), which is what a
   listener on the sound card hears. Also reported: the gap from timestamps
   alone, where the time goes (VLC end report, the worker's turn, VLC start),
   and audio lost per track as decoded samples captured against the file's.
2. OnAir to Icecast (`OutputConfig(kind="icecast")`, the engine's `#gather`
   chain) on a private icecast2, the mount recorded by ffmpeg to WAV while the
   sequence plays and measured on the decoded audio.
3. Liquidsoap 2.1 playing the same files to another mount of the same Icecast
   (bench/liquidsoap_gap.liq), recorded and measured the same way.
4. Command → status latency: a real `manage.py playback_worker --output dummy`
   subprocess; pause/resume commands issued with `playback.services.command_issue`
   are timed until a `playback_status` message showing the new state reaches a
   channel in the station's group (`station.<slug>`), read with channels_redis.

How a gap is measured (the same code for the timeline and the decoded streams):
every 10 ms window is labelled with the tone that holds most of its energy, to
find each track and each join A→B. At a join, tone A is fitted (amplitude and
phase at its known frequency, least squares) over the 200 ms before it and
tone B over the 200 ms after. Walking 16-sample windows from 50 ms inside A
forward, the audio is A as long as its residual against the A fit stays under
−10.5 dB of the tone; likewise backwards from inside B; both ends are then
refined to the sample. The gap is what lies between: what is neither track A
nor track B (silence, a glitch, a fade). A silence threshold alone would
under-read it, because MP3 pre-echo fills part of a real gap with noise.
Resolution about ±0.2 ms; `method_check` in the output reads back known gaps
(0, 2, 5, 20, 50 ms of silence) put through a 128 kb/s MP3 round trip. The
audio of a track between its two joins gives its length on air; lost audio is
the file's decoded length minus that (interior tracks).

The last line printed is a JSON object with all the figures.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import operator
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from tests.servers import IcecastServer

RATE = 44100
LEVEL_DB = -14.0
TARGET_MEDIAN_GAP_MS = 20.0
# Consecutive tracks alternate between a low and a high tone, so that a 10 ms window tells them apart.
LOW = [300 + 110 * k for k in range(6)]
HIGH = [1500 + 270 * k for k in range(6)]
FREQS = [f for pair in zip(LOW, HIGH, strict=True) for f in pair]  # 12 distinct tones


# --- measuring gaps on audio -----------------------------------------------------------------

COARSE = 441  # 10 ms
FINE = 16  # 0.36 ms
MATCH = 0.3  # residual amplitude under 0.3 of the tone's (−10.5 dB) = the tone is there


def pcm_left(pcm: bytes | memoryview) -> list[float]:
    """The left channel of interleaved stereo S16 (native = little-endian here) as floats."""
    samples = array.array("h")
    samples.frombytes(bytes(pcm[: len(pcm) // 4 * 4]))
    if sys.byteorder == "big":
        samples.byteswap()
    return [v / 32768.0 for v in samples[::2]]


def wav_left(path: Path) -> list[float]:
    """A WAV written by ffmpeg (s16le, stereo), read to EOF even if its header was not finalised."""
    data = path.read_bytes()
    at = data.find(b"data", 12)
    if at < 0:
        return []
    return pcm_left(memoryview(data)[at + 8:])


def coarse_labels(x: list[float], freqs: list[int]) -> list[int | None]:
    """The tone holding most of each 10 ms window's energy (None: silence or a mix)."""
    tables = [(f, [math.sin(2 * math.pi * f * n / RATE) for n in range(COARSE)],
               [math.cos(2 * math.pi * f * n / RATE) for n in range(COARSE)]) for f in freqs]
    mul = operator.mul
    labels: list[int | None] = []
    for start in range(0, len(x) - COARSE + 1, COARSE):
        seg = x[start:start + COARSE]
        energy = sum(map(mul, seg, seg))
        label = None
        if energy > COARSE * 1e-5:
            best, best_f = 0.0, None
            for f, sin_t, cos_t in tables:
                ps, pc = sum(map(mul, seg, sin_t)), sum(map(mul, seg, cos_t))
                power = (ps * ps + pc * pc) * 2 / COARSE
                if power > best:
                    best, best_f = power, f
            if best > 0.5 * energy:
                label = best_f
        labels.append(label)
    return labels


def tone_runs(labels: list[int | None], min_windows: int = 10) -> list[list]:
    """[tone, first sample, end sample] of each stretch of one tone."""
    runs: list[list] = []
    for i, label in enumerate(labels):
        if label is None:
            continue
        if runs and runs[-1][0] == label and i - runs[-1][2] <= 3:
            runs[-1][2] = i
        else:
            runs.append([label, i, i])
    return [[f, a * COARSE, (b + 1) * COARSE] for f, a, b in runs if b - a + 1 >= min_windows]


class Tone:
    """A sine at a known frequency, amplitude and phase fitted by least squares over [lo, hi)."""

    def __init__(self, x: list[float], freq: float, lo: int, hi: int) -> None:
        self.w = 2 * math.pi * freq / RATE
        ss = cc = sc = xs = xc = 0.0
        for n in range(lo, hi):
            s, c, v = math.sin(self.w * n), math.cos(self.w * n), x[n]
            ss += s * s
            cc += c * c
            sc += s * c
            xs += v * s
            xc += v * c
        det = ss * cc - sc * sc
        self.a = (xs * cc - xc * sc) / det
        self.b = (xc * ss - xs * sc) / det
        self.amp = math.hypot(self.a, self.b)

    def __call__(self, n: int) -> float:
        return self.a * math.sin(self.w * n) + self.b * math.cos(self.w * n)

    def matches(self, x: list[float], lo: int, hi: int) -> bool:
        residual = sum((x[n] - self(n)) ** 2 for n in range(lo, hi))
        return residual <= MATCH ** 2 * (hi - lo) * self.amp ** 2 / 2


def measure_join(x: list[float], fa: int, fb: int, end_a: int, start_b: int) -> dict | None:
    """Where tone A really ends and tone B really begins around a coarse join (sample indices)."""
    fit, guard, margin = int(0.2 * RATE), int(0.015 * RATE), int(0.05 * RATE)
    a_lo, a_hi = max(0, end_a - fit), end_a - guard
    b_lo, b_hi = start_b + guard, min(len(x), start_b + fit)
    if a_hi - a_lo < 2000 or b_hi - b_lo < 2000:
        return None
    tone_a, tone_b = Tone(x, fa, a_lo, a_hi), Tone(x, fb, b_lo, b_hi)
    lo, hi = max(a_lo, end_a - margin), min(b_hi, start_b + margin)
    if not (tone_a.matches(x, lo, lo + FINE) and tone_b.matches(x, hi - FINE, hi)):
        return None  # not a clean tone on either side: not a join we can read
    a_end = lo
    while a_end + FINE <= hi and tone_a.matches(x, a_end, a_end + FINE):
        a_end += FINE
    while a_end < hi and abs(x[a_end] - tone_a(a_end)) <= MATCH * tone_a.amp:
        a_end += 1
    b_start = hi
    while b_start - FINE >= lo and tone_b.matches(x, b_start - FINE, b_start):
        b_start -= FINE
    while b_start > lo and abs(x[b_start - 1] - tone_b(b_start - 1)) <= MATCH * tone_b.amp:
        b_start -= 1
    return {"a_end": a_end, "b_start": b_start, "gap_samples": max(0, b_start - a_end),
            "amp_a": tone_a.amp, "amp_b": tone_b.amp}


def measure_gaps(x: list[float], freqs: list[int], samples: list[int]) -> dict:
    """Gaps at every join k→k+1 of the sequence found in `x`, and audio lost per interior track."""
    order = {f: i for i, f in enumerate(freqs)}
    runs = tone_runs(coarse_labels(x, freqs))
    joins: dict[int, dict] = {}
    for (fa, _a0, a1), (fb, b0, _b1) in zip(runs, runs[1:], strict=False):
        if order[fb] != order[fa] + 1 or order[fa] in joins:
            continue  # only the sequence's own joins (a looping source also wraps N→1)
        join = measure_join(x, fa, fb, a1, b0)
        if join is not None:
            joins[order[fa]] = join
    gaps = [round(j["gap_samples"] / RATE * 1000, 2) for _k, j in sorted(joins.items())]
    lost = []
    for k in sorted(joins):
        if k - 1 in joins:  # track k lies between join k-1→k and join k→k+1
            length = joins[k]["a_end"] - joins[k - 1]["b_start"]
            lost.append(round((samples[k] - length) / RATE * 1000, 2))
    return {"boundaries": len(gaps), "expected_boundaries": len(freqs) - 1,
            "tracks_found": [order[f] + 1 for f, _a, _b in runs],
            "gap_ms": summary(gaps), "per_boundary_gap_ms": gaps,
            "lost_audio_ms": summary(lost), "per_track_lost_audio_ms": lost}


def summary(values: list[float]) -> dict:
    if not values:
        return {"min": None, "median": None, "max": None, "n": 0}
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2), "n": len(values)}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Sequence:
    """The tone files played in order, their frequencies and decoded lengths (samples)."""

    files: list[Path]
    freqs: list[int]
    samples: list[int]

    @property
    def audio_s(self) -> float:
        return sum(self.samples) / RATE


def make_sequence(folder: Path, count: int, shortest: float, longest: float) -> Sequence:
    """`count` MP3 tones (128 kb/s, stereo, no silence at either end), lengths spread over the range."""
    from tests.library.audio import make_tone

    step = (longest - shortest) / count
    files, samples = [], []
    for i, freq in enumerate(FREQS[:count]):
        seconds = round(shortest + i * step, 3)
        path = make_tone(folder / f"tone{i + 1:02d}-{freq}Hz.mp3", seconds=seconds, freq=freq,
                         title=f"Tone {i + 1} ({freq} Hz)", level_db=LEVEL_DB)
        decoded = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path),
                                  "-f", "s16le", "-ac", "2", "-ar", str(RATE), "-"],
                                 capture_output=True, check=True).stdout
        files.append(path)
        samples.append(len(decoded) // 4)
    return Sequence(files, FREQS[:count], samples)


def method_check(folder: Path) -> dict:
    """Known gaps of digital silence between two tones, through a 128 kb/s MP3 round trip, read back."""
    fa, fb, amp = FREQS[0], FREQS[1], 10 ** (LEVEL_DB / 20)
    read = {}
    for gap_ms in (0, 2, 5, 20, 50):
        g = gap_ms / 1000
        expr = (f"if(lt(t\\,1)\\,{amp}*sin(2*PI*{fa}*t)\\,if(lt(t\\,{1 + g})\\,0\\,"
                f"{amp}*sin(2*PI*{fb}*t)))")
        path = folder / f"check-{gap_ms}.mp3"
        subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", f"aevalsrc={expr}|{expr}:s={RATE}:d={2 + g}", "-c:a", "libmp3lame",
                        "-b:a", "128k", str(path)], check=True)
        pcm = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "s16le",
                              "-ac", "2", "-ar", str(RATE), "-"], capture_output=True, check=True).stdout
        measured = measure_gaps(pcm_left(pcm), [fa, fb], [RATE, RATE])
        read[str(gap_ms)] = measured["per_boundary_gap_ms"][0] if measured["boundaries"] else None
    return {"inserted_gap_ms_to_read_ms": read}


# --- helpers -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ffmpeg_exe() -> str:
    from library.analysis import ffmpeg_binary

    return ffmpeg_binary()


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class Recorder(threading.Thread):
    """Waits for a mount to appear, then records it with ffmpeg to WAV until the source leaves."""

    def __init__(self, icecast: IcecastServer, mount: str, wav: Path, *, wait: float = 15.0) -> None:
        super().__init__(name=f"record-{mount}", daemon=True)
        self.icecast, self.mount, self.wav, self.wait = icecast, mount, wav, wait
        self.process: subprocess.Popen | None = None
        self.connected_at: float | None = None
        self.error = ""
        self.cancel = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.wait
        while self.mount not in self.icecast.mounts():
            if time.monotonic() > deadline or self.cancel.is_set():
                self.error = f"mount /{self.mount} never appeared on Icecast within {self.wait:.0f} s"
                return
            time.sleep(0.05)
        self.connected_at = time.monotonic()
        self.process = subprocess.Popen(
            [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
             "-i", f"http://127.0.0.1:{self.icecast.port}/{self.mount}",
             "-c:a", "pcm_s16le", "-ac", "2", "-ar", str(RATE), str(self.wav)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self, timeout: float = 10.0) -> None:
        """Let ffmpeg end on the source's disconnection; interrupt it if it does not."""
        self.cancel.set()
        self.join(timeout=timeout)
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.process, signal.SIGINT)
        stderr = self.process.stderr.read().decode(errors="replace").strip() if self.process.stderr else ""
        if stderr:
            self.error = (self.error + " " + stderr[-300:]).strip()


# --- OnAir's worker, instrumented from outside ------------------------------------------------

class Capture:
    """An amem sink standing in for a sound card: keeps every buffer, drains in real time."""

    def __init__(self) -> None:
        import vlc

        self.clock = vlc.libvlc_clock  # µs, the same clock as the pts VLC hands out
        self.generation = lambda: 0
        self.buffers: list[tuple[int, int, int, bytes]] = []  # generation, pts, arrival, pcm
        self.end_us = 0.0
        self.drains: list[tuple[int, int, float]] = []  # called, returned, audio end (µs)
        self.flushes: list[int] = []

    def play(self, pcm: bytes, pts: int) -> None:
        self.buffers.append((self.generation(), pts, self.clock(), pcm))
        self.end_us = max(self.end_us, pts + len(pcm) // 4 * 1e6 / RATE)

    def drain(self) -> None:
        called = self.clock()
        wait = (self.end_us - called) / 1e6
        if wait > 0:
            time.sleep(wait)  # a sound card's drain returns once the audio has been heard
        self.drains.append((called, self.clock(), self.end_us))

    def flush(self, pts: int) -> None:
        self.flushes.append(self.clock())


def timed_classes():
    from playback.engine import Engine
    from playback.worker import PlaybackWorker

    class TimedEngine(Engine):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.starts: dict[int, float] = {}  # generation → monotonic time start() was called

        def start(self, media):
            called = time.monotonic()
            generation = super().start(media)
            self.starts[generation] = called
            return generation

    class TimedWorker(PlaybackWorker):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.ends: dict[int, tuple[float, float]] = {}  # generation → (VLC end event, handled)
            self.finish_ms: list[float] = []

        def handle_event(self, event: tuple) -> None:
            if event[0] == "vlc" and event[1] == "end":
                self.ends[event[2]] = (event[3], time.monotonic())
            super().handle_event(event)

        def finish(self, outcome: str, failure: str = "") -> None:
            t0 = time.perf_counter()
            super().finish(outcome, failure)
            self.finish_ms.append((time.perf_counter() - t0) * 1000)

    return TimedEngine, TimedWorker


def make_station(slug: str):
    from radio.models import Station

    return Station.objects.create(name=f"Bench {slug}", slug=slug, queue_min_depth=0)


def import_tones(station, files: list[Path]) -> list:
    from library.models import Track
    from library.services import track_analyse, track_import_file

    tracks = []
    for path in files:
        track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                  original_name=path.name, hints={"kind": "song"})
        tracks.append(track_analyse(track=track))
    return tracks


def run_worker(station, tracks: list, config, *, audio_sink=None, timeout: float,
               after_start=None, on_engine=None) -> tuple:
    """Queue `tracks` and run the worker's production loop until the last one has ended."""
    from django.conf import settings

    from playback import services
    from radio.services import lease_acquire

    TimedEngine, TimedWorker = timed_classes()
    for track in tracks:
        services.queue_append(station=station, track=track)
    events: queue.Queue = queue.Queue()
    engine = TimedEngine(config, events, audio_sink=audio_sink)
    if on_engine:
        on_engine(engine)
    owner = f"bench:{os.getpid()}:{station.slug}"
    lease_acquire(key=services.playback_lease_key(station), owner=owner, station=station,
                  stale_after=settings.PLAYBACK_STALE_SECONDS)
    worker = TimedWorker(station, engine, events, owner=owner)
    try:
        worker.recover()
        if after_start:
            after_start()
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            worker.step()
            if len(engine.starts) >= len(tracks) and worker.on_air is None:
                break
        finished = time.monotonic()
        done = len(worker.ends)
        worker.close()
        return engine, worker, {"wall_s": round(finished - started, 3), "items_ended": done}
    finally:
        engine.release()


def pace(engine, worker, audio_s: float) -> float | None:
    """(first start → last end reported) minus the audio played, per join: how far behind
    real time each join puts the output (for a stream: what listeners' buffers must absorb)."""
    if not engine.starts or not worker.ends or len(engine.starts) < 2:
        return None
    first, last = min(engine.starts.values()), max(end for end, _handled in worker.ends.values())
    return round((last - first - audio_s) * 1000 / (len(engine.starts) - 1), 1)


# --- 1. amem in-process ----------------------------------------------------------------------

def bench_amem(seq: Sequence) -> dict:
    from playback.engine import OutputConfig

    station = make_station("gap-amem")
    tracks = import_tones(station, seq.files)
    capture = Capture()

    def attribute(engine) -> None:  # each buffer is tagged with the item (generation) on air
        capture.generation = lambda: engine.generation

    engine, worker, run = run_worker(station, tracks, OutputConfig(kind="amem"), audio_sink=capture,
                                     timeout=seq.audio_s + 30, on_engine=attribute)
    return analyse_amem(capture, engine, worker, run, seq, tracks)


def analyse_amem(capture: Capture, engine, worker, run: dict, seq: Sequence, tracks: list) -> dict:
    by_gen: dict[int, list] = {}
    for generation, pts, arrival, pcm in capture.buffers:
        by_gen.setdefault(generation, []).append((pts, arrival, pcm))
    generations = sorted(g for g in by_gen if g > 0)
    if not generations:
        return {"error": "amem delivered no audio"}
    # The timeline a sound card plays: each buffer at its due time, silence where nothing is due.
    t0 = by_gen[generations[0]][0][0]
    last_pts, _a, last_pcm = by_gen[generations[-1]][-1]
    total = round((last_pts - t0) * RATE / 1e6) + len(last_pcm) // 4 + RATE // 10
    timeline = [0.0] * total
    pts_jumps = 0
    per_item = []
    for generation in generations:
        expected_at = None
        captured = 0
        for pts, _arrival, pcm in by_gen[generation]:
            at = round((pts - t0) * RATE / 1e6)
            if expected_at is not None and abs(at - expected_at) <= 2:
                at = expected_at  # µs rounding of a contiguous pts: keep the samples contiguous
            elif expected_at is not None:
                pts_jumps += 1
            samples = pcm_left(pcm)
            timeline[at:at + len(samples)] = samples
            expected_at = at + len(samples)
            captured += len(samples)
        per_item.append(captured)
    del timeline[total:]
    measured = measure_gaps(timeline, seq.freqs, seq.samples)
    lost_samples = [expected - n for expected, n in zip(seq.samples, per_item, strict=False)]
    pts_gaps, vlc_end, worker_turn, vlc_start, first_decode = [], [], [], [], []
    for a, b in zip(generations, generations[1:], strict=False):
        a_pts, _arr, a_pcm = by_gen[a][-1]
        a_end_us = a_pts + len(a_pcm) // 4 * 1e6 / RATE
        b_pts, b_arrival, _pcm = by_gen[b][0]
        pts_gaps.append((b_pts - a_end_us) / 1000)
        if a in worker.ends and b in engine.starts:
            end_event, _handled = worker.ends[a]
            vlc_end.append(end_event * 1000 - a_end_us / 1000)
            worker_turn.append((engine.starts[b] - end_event) * 1000)
            vlc_start.append(b_pts / 1000 - engine.starts[b] * 1000)
            first_decode.append(b_arrival / 1000 - engine.starts[b] * 1000)
    ahead = [(pts - arrival) / 1000 for g in generations for pts, arrival, _p in by_gen[g]]

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    return {
        **measured,
        "method": "amem buffers laid on their due times (pts), capture drains like a sound card",
        "pts_gap_ms": summary(pts_gaps),
        "where_the_time_goes_median_ms": {
            "vlc_end_report": median(vlc_end),
            "worker_end_to_next_start": median(worker_turn),
            "vlc_start_to_first_sample_due": median(vlc_start),
            "of_which_first_buffer_decoded": median(first_decode),
        },
        "where_the_time_goes_ms": {"vlc_end_report": [round(v, 1) for v in vlc_end],
                                   "worker_end_to_next_start": [round(v, 1) for v in worker_turn],
                                   "vlc_start_to_first_sample_due": [round(v, 1) for v in vlc_start]},
        "worker_finish_ms_median": round(statistics.median(worker.finish_ms), 2) if worker.finish_ms else None,
        "buffers_handed_ahead_of_due_ms": summary(ahead),
        "items_played": len(generations),
        "captured_samples_per_track": per_item,
        "lost_samples_per_track": lost_samples,
        "lost_audio_ms_decoded": summary([n / RATE * 1000 for n in lost_samples]),
        "pts_discontinuities_inside_tracks": pts_jumps,
        "flushes": len(capture.flushes),
        "wall_minus_audio_per_join_ms": pace(engine, worker, seq.audio_s),
        "cue_out_minus_duration_ms": [round(((t.cue_out or 0) - (t.duration or 0)) * 1000, 1) for t in tracks],
        **run,
    }


# --- 2. OnAir to Icecast ------------------------------------------------------------------------

def bench_icecast_onair(icecast: IcecastServer, seq: Sequence, workdir: Path) -> dict:
    from playback.engine import OutputConfig

    station = make_station("gap-icecast")
    tracks = import_tones(station, seq.files)
    mount = "bench.mp3"
    url = f"source:{icecast.password}@127.0.0.1:{icecast.port}/{mount}"
    config = OutputConfig(kind="icecast", icecast_url=url)
    wav = workdir / "onair_icecast.wav"
    recorder = Recorder(icecast, mount, wav)
    result: dict = {}
    try:
        engine, worker, run = run_worker(station, tracks, config, timeout=seq.audio_s + 30,
                                         after_start=recorder.start)
        result.update(run)
        turns = [(engine.starts[g + 1] - worker.ends[g][0]) * 1000 for g in sorted(worker.ends)
                 if g + 1 in engine.starts]
        result["worker_end_to_next_start_ms"] = summary(turns)
        result["wall_minus_audio_per_join_ms"] = pace(engine, worker, seq.audio_s)
    finally:
        recorder.finish()  # engine released above: the source has left, ffmpeg ends
    return finish_recording(result, recorder, wav, seq, icecast)


def finish_recording(result: dict, recorder: Recorder, wav: Path, seq: Sequence,
                     icecast: IcecastServer) -> dict:
    if recorder.error:
        result["ffmpeg_stderr"] = recorder.error  # "Stream ends prematurely": the source left, as expected
    if not wav.exists() or wav.stat().st_size < 1000:
        result["error"] = ("no audio arrived on the Icecast mount"
                           + (f": {recorder.error}" if recorder.error else ""))
        result["icecast_error_log_tail"] = icecast.error_log()[-800:]
        return result
    x = wav_left(wav)
    result["recorded_s"] = round(len(x) / RATE, 2)
    result.update(measure_gaps(x, seq.freqs, seq.samples))
    result["method"] = "Icecast mount recorded by ffmpeg to WAV, decoded audio measured"
    if result["boundaries"] == 0:
        result["error"] = "audio arrived but no track join could be read in it"
    return result


# --- 3. Liquidsoap to Icecast ----------------------------------------------------------------------

def bench_liquidsoap(icecast: IcecastServer, seq: Sequence, workdir: Path) -> dict:
    liquidsoap = shutil.which("liquidsoap")
    if not liquidsoap:
        return {"error": "liquidsoap not installed (apt-get install liquidsoap)"}
    version = subprocess.run([liquidsoap, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    mount = "liquidsoap.mp3"
    playlist = workdir / "sequence.m3u"
    playlist.write_text("".join(f"{path}\n" for path in seq.files))
    env = dict(os.environ, GAP_PLAYLIST=str(playlist), GAP_ICECAST_PORT=str(icecast.port),
               GAP_ICECAST_PASSWORD=icecast.password, GAP_ICECAST_MOUNT=mount)
    wav = workdir / "liquidsoap.wav"
    log = open(workdir / "liquidsoap.log", "wb")
    process = subprocess.Popen([liquidsoap, str(ROOT / "bench" / "liquidsoap_gap.liq")], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    recorder = Recorder(icecast, mount, wav, wait=30)
    recorder.start()
    started = time.monotonic()
    result: dict = {"version": version}
    try:
        recorder.join(timeout=35)
        # The playlist plays once; when it ends the output stops and leaves the mount.
        deadline = time.monotonic() + seq.audio_s + 15
        while time.monotonic() < deadline and mount in icecast.mounts() and process.poll() is None:
            time.sleep(0.2)
        result["wall_s"] = round(time.monotonic() - started, 2)
    finally:
        stop_process(process)
        log.close()
        recorder.finish()
    if process.returncode not in (0, -signal.SIGTERM, None) and not wav.exists():
        result["log_tail"] = (workdir / "liquidsoap.log").read_text(errors="replace")[-800:]
    return finish_recording(result, recorder, wav, seq, icecast)


# --- 4. command → status latency ----------------------------------------------------------------

class StatusListener(threading.Thread):
    """Joins the station's group on the channel layer; puts (arrival, message) on a queue."""

    def __init__(self, slug: str) -> None:
        super().__init__(name="status-listener", daemon=True)
        self.slug = slug
        self.messages: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        import asyncio

        asyncio.run(self._listen())

    async def _listen(self) -> None:
        import asyncio

        from channels_redis.core import RedisChannelLayer
        from django.conf import settings

        from radio.notify import station_group

        layer = RedisChannelLayer(hosts=[settings.REDIS_URL])
        channel = await layer.new_channel()
        await layer.group_add(station_group(self.slug), channel)
        self.ready.set()
        try:
            while not self.stopping.is_set():
                try:
                    message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                except TimeoutError:
                    continue
                self.messages.put((time.monotonic(), message))
        finally:
            await layer.group_discard(station_group(self.slug), channel)
            await layer.flush()


def wait_message(listener: StatusListener, predicate, since: float, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            arrived, message = listener.messages.get(timeout=left)
        except queue.Empty:
            return None
        if arrived >= since and message.get("type") == "playback_status" and predicate(message["data"]):
            return arrived, message


def bench_command_latency(workdir: Path, commands: int) -> dict:
    from playback import services
    from playback.models import PlayerCommand
    from tests.library.audio import make_tone

    station = make_station("gap-commands")
    long_tone = make_tone(workdir / "long.mp3", seconds=60, freq=440, title="Long tone", level_db=LEVEL_DB)
    (track,) = import_tones(station, [long_tone])
    services.queue_append(station=station, track=track)
    listener = StatusListener(station.slug)
    listener.start()
    if not listener.ready.wait(10):
        return {"error": "could not join the station's channel group"}
    out = open(workdir / "worker.log", "wb")
    process = subprocess.Popen([sys.executable, "manage.py", "playback_worker", "--station", station.slug,
                                "--output", "dummy"], cwd=ROOT, env=dict(os.environ), stdout=out,
                               stderr=subprocess.STDOUT)
    latencies: list[float] = []
    handled: list[float] = []  # issue → the worker marked the command done (its own clock stamp)
    missed = 0
    try:
        playing = wait_message(listener, lambda d: d.get("is_playing") and d.get("current"),
                               since=0.0, timeout=30)
        if playing is None:
            return {"error": "the worker subprocess never reported playing",
                    "worker_log_tail": (workdir / "worker.log").read_text(errors="replace")[-800:]}
        time.sleep(0.3)
        for n in range(commands):
            pause = n % 2 == 0
            action = PlayerCommand.Action.PAUSE if pause else PlayerCommand.Action.RESUME
            issued, issued_wall = time.monotonic(), time.time()
            command = services.command_issue(station=station, action=action)
            got = wait_message(listener, lambda d, p=pause: d.get("paused") is p, since=issued, timeout=5)
            if got is None:
                missed += 1
            else:
                latencies.append((got[0] - issued) * 1000)
                command.refresh_from_db()
                if command.handled_at:
                    handled.append((command.handled_at.timestamp() - issued_wall) * 1000)
            time.sleep(0.25)
    finally:
        stop_process(process)
        out.close()
        listener.stopping.set()
        listener.join(timeout=5)
    return {"commands": commands, "answered": len(latencies), "missed": missed,
            "median_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(p95(latencies), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
            "all_ms": [round(v, 1) for v in latencies],
            "issue_to_handled_median_ms": round(statistics.median(handled), 1) if handled else None,
            "method": "command_issue() → playback_status with the new paused state on group station.<slug>; "
                      "worker: manage.py playback_worker --output dummy subprocess"}


# --- main -----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=12, choices=range(3, len(FREQS) + 1), metavar="3..12")
    parser.add_argument("--seconds", type=float, nargs=2, default=[2.0, 3.0], metavar=("MIN", "MAX"),
                        help="track lengths, spread evenly from MIN to below MAX")
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[], choices=["amem", "icecast", "liquidsoap", "commands"])
    args = parser.parse_args()

    from tests.servers import IcecastServer, PostgresServer, RedisServer

    workdir = Path(tempfile.mkdtemp(prefix="onair-gap-"))
    postgres, redis_server = PostgresServer(), RedisServer()
    os.environ["DATABASE_URL"] = postgres.start().rsplit("/", 1)[0] + "/postgres"
    os.environ["REDIS_URL"] = redis_server.start()
    os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SECRET_KEY="bench-" + "x" * 50,
                      ALLOWED_HOSTS="localhost", ONAIR_VAR_DIR=str(workdir / "var"),
                      ONAIR_TOKEN_KEY="7m0n7z4oGxN3n7oO3b0yQy3TQw6Q2bQ5cJ8Wb2a2dXM=", LOG_LEVEL="WARNING",
                      DB_CONN_MAX_AGE="0")
    icecast = None
    figures: dict = {"benchmark": "playback_gap", "tracks": args.tracks,
                     "target_median_gap_ms": TARGET_MEDIAN_GAP_MS}
    t_start = time.monotonic()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        seq = make_sequence(workdir / "tones", args.tracks, *args.seconds)
        figures["frequencies_hz"] = seq.freqs
        figures["track_seconds"] = [round(n / RATE, 3) for n in seq.samples]
        figures["method_check"] = method_check(workdir)
        print(f"method check (MP3 round trip): {figures['method_check']}", flush=True)

        if "amem" not in args.skip:
            figures["onair_amem"] = bench_amem(seq)
            report("OnAir amem", figures["onair_amem"])
        if {"icecast", "liquidsoap"} - set(args.skip):
            if shutil.which("icecast2"):
                icecast = IcecastServer()
                icecast.start()
            else:
                figures["icecast"] = "icecast2 not installed (apt-get install icecast2): stream parts skipped"
        if icecast and "icecast" not in args.skip:
            figures["onair_icecast"] = bench_icecast_onair(icecast, seq, workdir)
            report("OnAir Icecast", figures["onair_icecast"])
        if icecast and "liquidsoap" not in args.skip:
            figures["liquidsoap_icecast"] = bench_liquidsoap(icecast, seq, workdir)
            report("Liquidsoap Icecast", figures["liquidsoap_icecast"])
        if "commands" not in args.skip:
            figures["command_latency"] = bench_command_latency(workdir, args.commands)
            print(f"command → status: {figures['command_latency']}", flush=True)
    finally:
        if icecast:
            icecast.stop()
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures["runtime_s"] = round(time.monotonic() - t_start, 1)
    print(json.dumps(figures))


def report(name: str, result: dict) -> None:
    if "error" in result:
        print(f"{name}: ERROR {result['error']}", flush=True)
    gap, lost = result.get("gap_ms", {}), result.get("lost_audio_ms", {})
    print(f"{name}: {result.get('boundaries', 0)} joins, gap min/median/max "
          f"{gap.get('min')}/{gap.get('median')}/{gap.get('max')} ms, lost audio per track median "
          f"{lost.get('median')} ms (max {lost.get('max')})", flush=True)


if __name__ == "__main__":
    main()
