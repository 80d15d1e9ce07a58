"""Broadcast sound: loudness, peaks, joins, skip fades and under-runs, on the decoded Icecast stream and the
local output, with the station running as `make run` starts it and the machine busy.

    uv run --frozen python bench/sound.py --minutes 10

A private PostgreSQL, Redis and icecast2 (Debian's `icecast2`); `manage.py run_station` (supervisord and
every Procfile process), the station's output set to Icecast; the playback worker also records what
its output plays (the air check: the local output). The library: `--songs` tone songs of 20–40 s, one
frequency each, whose files span 22 dB (peaks −26 to −4 dBFS: about −29 to −7 LUFS), and 3 jingles.
Auto-DJ plays them; an operator skips (every 15–40 s, half the time) or queues a jingle through the
REST API; `--load` client threads keep the web process and PostgreSQL busy with track searches the
whole time. A listener decodes the mount with ffmpeg from start to end.

Both recordings are cut into items by tone (playback.aircheck) and measured the same way: each
item's integrated loudness (ffmpeg's ebur128, the library's meter) against the target, the maximum
true peak, the gap at every join (crossfade 0: butt joins), audio lost per completed item (its file's
length minus what was heard), and the fade before each skip (from 1 dB under the item's level to
silence). Also: the playback worker's CPU share and the output's under-runs (buffers that came late).

`--liquidsoap MINUTES` then plays the same files with Liquidsoap 2.1 (bench/liquidsoap_sound.liq,
Debian's `liquidsoap`) to another mount of the same icecast2, each track amplified to the same target
from the same analysis (`liq_amplify`, ReplayGain-style), `--liquidsoap-crossfade` seconds of
crossfade (0: none), and measures its stream the same way.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 44100
TARGET = -16.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stats(values: list[float], digits: int = 2) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], digits)

    return {"n": len(values), "min": round(ordered[0], digits), "median": pct(0.5), "p95": pct(0.95),
            "max": round(ordered[-1], digits)}


class Listener(threading.Thread):
    """ffmpeg decoding the mount to PCM; it reconnects if the stream drops."""

    def __init__(self, url: str, path: Path) -> None:
        super().__init__(daemon=True)
        self.url, self.path = url, path
        self.process: subprocess.Popen | None = None
        self.started_mono: float | None = None
        self.stopping = False

    def run(self) -> None:
        from library.analysis import ffmpeg_binary

        with self.path.open("wb") as out:
            while not self.stopping:
                self.process = subprocess.Popen(
                    [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", self.url, "-f", "s16le", "-ac",
                     "2", "-ar", str(RATE), "-"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                while chunk := self.process.stdout.read(65536):
                    if self.started_mono is None:
                        self.started_mono = time.monotonic()
                    out.write(chunk)
                if not self.stopping:
                    time.sleep(0.5)

    def stop(self) -> None:
        self.stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        self.join(10)


def stream_as_recording(pcm_path: Path, folder: Path, start_mono: float):
    """The decoded stream in the air-check format (one block per second, on its own clock), to be
    measured by the same code as the local output."""
    from playback import aircheck

    folder.mkdir(parents=True, exist_ok=True)
    data = np.fromfile(pcm_path, dtype="<i2")
    data = data[:len(data) // 2 * 2].reshape(-1, 2)
    with (folder / f"stream{aircheck.SUFFIX}").open("wb") as out:
        out.write(aircheck.encode_header(wall_time=time.time(), mono_us=int(start_mono * 1e6)))
        for i in range(0, len(data), RATE):
            out.write(aircheck.encode_block(int(start_mono * 1e6 + i * 1e6 / RATE), data[i:i + RATE]))
    return aircheck.load(folder)


def loudness(samples: np.ndarray, scratch: Path) -> tuple[float | None, float | None]:
    from library.analysis import analyse_file

    with wave.open(str(scratch), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes())
    result = analyse_file(scratch)
    return result.loudness_lufs, result.true_peak_dbtp


def _whole_items(segs: list) -> list:
    """aircheck's segments, with a tone that a crossfade split (its tail under the next item) joined
    back into one item."""
    from playback.aircheck import Segment

    merged: list = []
    for seg in segs:
        if merged and merged[-1].freq_hz == seg.freq_hz and seg.start_mono - merged[-1].end_mono < 3.0:
            merged[-1] = Segment(seg.freq_hz, merged[-1].start_mono, seg.end_mono)
        else:
            merged.append(seg)
    return merged


def measure(rec, freqs: dict[float, dict], scratch: Path, *, edge: float = 0.2, crossfade: float = 0.0) -> dict:
    """Figures for one recording. `freqs`: tone → {kind, length, target}. An item heard more than 1 s
    shorter than its file was skipped (its end is a fade); the first and last items are partial (the
    recording began and ended inside them)."""
    from playback import aircheck
    from tests.playback.sound import tone_levels

    segs = [s for s in aircheck.segments(rec, expected_freqs=sorted(freqs)) if s.seconds >= 0.1]
    segs = _whole_items(segs)
    # Butt joins (all of them without crossfade; else those with a jingle): gap in ms, 0 is sample-exact.
    joins = [b.gap_ms for b in aircheck.boundaries(segs)
             if not crossfade or not freqs[b.from_freq]["kind"] == freqs[b.to_freq]["kind"] == "song"]
    # Crossfades as heard: at each join, from when the incoming tone rises within 45 dB of its level to
    # when the outgoing one last was there (20 ms windows, Hann-weighted projection on each tone).
    overlaps: dict[str, list[float]] = {"song_to_song": [], "other": []}
    for a, b in zip(segs, segs[1:], strict=False):
        if b.start_mono - a.end_mono > 0.5:
            continue
        lo, hi = max(a.start_mono, b.start_mono - 12.0), min(b.end_mono, a.end_mono + 1.0)
        levels = tone_levels(rec.samples(lo, hi), (a.freq_hz, b.freq_hz))
        full = float(np.median(levels[: max(1, len(levels) // 4), 0]))
        on = levels > full - 45
        if not on[:, 0].any() or not on[:, 1].any():
            continue
        last_a = len(on) - 1 - int(np.argmax(on[::-1, 0]))
        first_b = int(np.argmax(on[:, 1]))
        kind = "song_to_song" if freqs[a.freq_hz]["kind"] == freqs[b.freq_hz]["kind"] == "song" else "other"
        overlaps[kind].append(max(0, last_a - first_b + 1) * 20.0)
    errors, lost, fades, peaks = [], [], [], []
    for n, seg in enumerate(segs):
        info = freqs[seg.freq_hz]
        whole = 0 < n < len(segs) - 1
        skipped = whole and seg.seconds < info["length"] - 1.0
        if seg.seconds > 2 * edge + 2.0:  # its loudness away from its edges (fades, crossfades: `edge`)
            samples = rec.samples(seg.start_mono + edge, seg.end_mono - (max(1.0, edge) if skipped else edge))
            lufs, peak = loudness(samples, scratch)
            if lufs is not None and whole:
                errors.append(lufs - info["target"])
            if peak is not None:
                peaks.append(peak)
        if skipped:
            tail = rec.samples(max(seg.start_mono, seg.end_mono - 1.5), seg.end_mono + 0.05)
            width = RATE // 200  # 5 ms
            level = [20 * np.log10(max(1e-9, float(np.sqrt(np.mean(tail[i:i + width, 0] ** 2))) / 32768))
                     for i in range(0, len(tail) - width, width)]
            if level:
                full = float(np.median(level[:len(level) // 3]))
                under = [i for i, db in enumerate(level) if db < full - 1.0]
                if under:
                    first = under[0]
                    silent = next((i for i in range(first, len(level)) if level[i] < full - 40), len(level))
                    fades.append((silent - first) * 5.0)
        elif whole:
            lost.append(max(0.0, info["length"] - seg.seconds) * 1000)
    return {"items": len(segs), "joins": len(joins),
            "crossfade_heard_ms": {k: stats(v, 0) for k, v in overlaps.items()},
            "loudness_error_lu": stats(errors), "within_1_lu": sum(abs(e) <= 1.0 for e in errors),
            "max_true_peak_dbtp": round(max(peaks), 2) if peaks else None,
            "join_gap_ms": stats(joins, 3), "joins_over_one_sample": sum(abs(g) > 1000 / RATE for g in joins),
            "lost_ms_per_item": stats(lost, 1), "skipped_items": len(fades), "skip_fade_ms": stats(fades, 0)}


def liquidsoap(args, icecast, var: Path, freqs: dict[float, dict]) -> dict:
    """The same files through Liquidsoap 2.1 to another mount, recorded and measured the same way."""
    import shutil

    from library.models import Track

    binary = shutil.which("liquidsoap")
    if not binary:
        return {"error": "liquidsoap is not installed (apt-get install liquidsoap)"}
    lines = []
    for track in Track.objects.exclude(kind=Track.Kind.JINGLE):
        from library import storage

        gain = TARGET - track.loudness_lufs
        lines.append(f'annotate:liq_amplify="{gain:.2f} dB":{storage.absolute(track.file)}')
    playlist = var / "liquidsoap.m3u"
    playlist.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, SOUND_PLAYLIST=str(playlist), SOUND_CROSSFADE=str(args.liquidsoap_crossfade),
               SOUND_ICECAST_PORT=str(icecast.port), SOUND_ICECAST_PASSWORD=icecast.password,
               SOUND_ICECAST_MOUNT="liquidsoap.mp3")
    print(f"Liquidsoap for {args.liquidsoap:g} min …", flush=True)
    log = (var / "liquidsoap.log").open("wb")
    process = subprocess.Popen([binary, str(ROOT / "bench" / "liquidsoap_sound.liq")], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "liquidsoap.mp3" not in icecast.mounts() and time.monotonic() < deadline:
            time.sleep(0.2)
        listener = Listener(icecast.listen_url("liquidsoap.mp3"), var / "liquidsoap.pcm")
        listener.start()
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        time.sleep(args.liquidsoap * 60)
        share = (cpu_seconds(process.pid) - cpu0) / (time.monotonic() - wall0)
        listener.stop()
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    if listener.started_mono is None:
        return {"error": "no audio arrived from the Liquidsoap mount"}
    rec = stream_as_recording(var / "liquidsoap.pcm", var / "liquidsoap", listener.started_mono)
    return {"crossfade_s": args.liquidsoap_crossfade, "cpu_share": round(share, 4),
            **measure(rec, freqs, var / "scratch.wav", edge=args.liquidsoap_crossfade + 0.2,
                      crossfade=args.liquidsoap_crossfade)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--songs", type=int, default=24)
    parser.add_argument("--load", type=int, default=4, help="client threads searching tracks all the time")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--crossfade", type=float, default=2.0, help="the station's crossfade (s)")
    parser.add_argument("--liquidsoap", type=float, default=0.0, metavar="MINUTES",
                        help="also play the same files with Liquidsoap for this long (0: skip)")
    parser.add_argument("--liquidsoap-crossfade", type=float, default=2.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from tests.servers import IcecastServer, PostgresServer, RedisServer, free_port

    postgres, redis_server, icecast = PostgresServer(), RedisServer(), IcecastServer()
    database = postgres.start().rsplit("/", 1)[0] + "/postgres"
    os.environ["DATABASE_URL"] = database
    os.environ["REDIS_URL"] = redis_server.start()
    icecast.start()
    var = Path(tempfile.mkdtemp(prefix="onair-sound-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SECRET_KEY="bench-" + "x" * 50,
                      ALLOWED_HOSTS="localhost,127.0.0.1", ONAIR_HTTPS="false", ONAIR_VAR_DIR=str(var),
                      LOG_LEVEL="WARNING", DB_CONN_MAX_AGE="0")
    run = listener = None
    stop_load = threading.Event()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from library.models import Track
        from library.services import track_analyse, track_import_file
        from tests.library.audio import make_tone
        from tests.playback.soak import SoakRun, _station

        call_command("migrate", verbosity=0)
        station = _station()
        station.queue_min_depth, station.silence_alert_seconds = 3, 5
        station.output, station.icecast_mount = "icecast", "sound.mp3"
        station.crossfade = args.crossfade
        station.save()
        rng = random.Random(args.seed)
        freqs: dict[float, dict] = {}
        song_ids, jingle_ids = [], []
        print(f"making {args.songs} songs and 3 jingles …", flush=True)
        (var / "library").mkdir()
        for n in range(args.songs + 3):
            jingle = n >= args.songs
            freq = 300.0 + 70.0 * n
            seconds = 6.0 if jingle else rng.uniform(20.0, 40.0)
            level = -20.0 if jingle else -26.0 + 22.0 * n / max(1, args.songs - 1)
            path = make_tone(var / "library" / f"t{n:02d}.mp3", seconds=seconds, freq=freq, level_db=level,
                             title=f"{'Jingle' if jingle else 'Tone'} {n:02d}", artist=f"Artist {n:02d}")
            track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                      original_name=path.name, hints={"kind": "jingle" if jingle else "song"})
            track = track_analyse(track=track)
            (jingle_ids if jingle else song_ids).append(track.pk)
            freqs[freq] = {"kind": track.kind, "length": (track.cue_out or track.duration) - track.cue_in,
                           "target": TARGET, "file_lufs": track.loudness_lufs}
        spread = [f["file_lufs"] for f in freqs.values()]
        print(f"files from {min(spread):.1f} to {max(spread):.1f} LUFS", flush=True)

        env = {**os.environ, "PLAYBACK_RECORD_DIR": str(var / "heard"),
               "ONAIR_ADMIN_PASSWORD": "sound-admin-pw", "HOST": "127.0.0.1", "LOG_LEVEL": "INFO",
               "ICECAST_HOST": "127.0.0.1",
               "ICECAST_PORT": str(icecast.port), "ICECAST_SOURCE_PASSWORD": icecast.password}
        run = SoakRun(var_dir=var, port=free_port(), env=env)
        env["PORT"] = str(run.port)
        run.start()
        deadline = time.monotonic() + 30
        while "sound.mp3" not in icecast.mounts() and time.monotonic() < deadline:
            time.sleep(0.2)
        listener = Listener(icecast.listen_url("sound.mp3"), var / "stream.pcm")
        listener.start()

        answered = [0]

        def load(n: int) -> None:
            words = ["tone", "artist", "jingle", "1", "2"]
            while not stop_load.is_set():
                try:
                    status, _ = run.api("GET", f"/api/v1/stations/main/tracks?search={words[n % len(words)]}")
                    answered[0] += status == 200
                except OSError:
                    time.sleep(0.1)
                n += 1

        loaders = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(args.load)]
        for thread in loaders:
            thread.start()
        pid = run.playback_pid()
        cpu0, wall0 = cpu_seconds(pid) if pid else 0.0, time.monotonic()
        started, total, skips = time.monotonic(), args.minutes * 60, []
        print(f"on air for {args.minutes:g} min with {args.load} load threads …", flush=True)
        while time.monotonic() - started < total:
            time.sleep(rng.uniform(15.0, 40.0))
            if rng.random() < 0.5:
                skips.append(time.monotonic())
                run.command("skip", "skip")
            else:
                run.queue_edit("append", "POST", "", {"track": rng.choice(jingle_ids), "at": "next"})
        worker_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0) if pid else None
        stop_load.set()
        time.sleep(3.0)  # the stream trails the output
        listener.stop()
        run.stop()
        for thread in loaders:
            thread.join(15)

        from playback import aircheck

        log = (var / "log" / "playback.log").read_text(errors="replace") if (var / "log").exists() else ""
        underruns = max([int(m) for m in re.findall(r"\((\d+) underruns so far\)", log)] or [0])
        local = aircheck.load(var / "heard")
        figures = {"benchmark": "sound", "minutes": args.minutes, "load_threads": args.load,
                   "crossfade_s": args.crossfade,
                   "target_lufs": TARGET, "file_lufs_range": [round(min(spread), 1), round(max(spread), 1)],
                   "skips": len(skips),
                   "playback_worker_cpu_share": round(worker_cpu, 4) if worker_cpu else None,
                   "underruns_logged": underruns, "api_searches_answered": answered[0]}
        edge = args.crossfade + 0.2
        figures["local"] = measure(local, freqs, var / "scratch.wav", edge=edge, crossfade=args.crossfade)
        if listener.started_mono is not None and (var / "stream.pcm").stat().st_size:
            stream = stream_as_recording(var / "stream.pcm", var / "stream", listener.started_mono)
            figures["stream"] = measure(stream, freqs, var / "scratch.wav", edge=edge, crossfade=args.crossfade)
        else:
            figures["stream"] = {"error": "no audio arrived from the mount"}
        if args.liquidsoap > 0:
            figures["liquidsoap"] = liquidsoap(args, icecast, var, freqs)
        for part in ("local", "stream", "liquidsoap"):
            if part in figures:
                print(part, json.dumps(figures[part]), flush=True)
        if args.keep:
            print(f"kept: {var}")
        print(json.dumps(figures))
    finally:
        stop_load.set()
        if listener is not None and listener.is_alive():
            listener.stop()
        if run is not None and run.process is not None and run.process.poll() is None:
            run.stop()
        icecast.stop()
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    urllib.request.socket.setdefaulttimeout(30)
    main()
