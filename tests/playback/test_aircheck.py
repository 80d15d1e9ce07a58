"""The air-check reader and analysis, on recordings written with the module's own encoder.

The tracks are sine tones (one frequency per track), so the truth is known to the sample:
where each tone starts and ends, and where the listener heard nothing.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from playback import aircheck
from playback.aircheck import encode_block, encode_header

RATE = 44100
BLOCK = 1152  # frames per buffer, as libvlc's amem hands MP3 audio over
T0_US = 5_000_000_000  # a CLOCK_MONOTONIC reading (µs)
WALL_OFFSET = 1_790_000_000.0 - T0_US / 1e6  # time.time() - time.monotonic() on the recording machine
FREQS = [300.0, 340.0, 380.0, 420.0, 460.0]


def tone(freq: float, seconds: float, *, level_db: float = -12.0, fade_ms: float = 0.0,
         phase: float = 0.0) -> np.ndarray:
    """A stereo int16 sine of `level_db` dBFS peak, with linear fades in and out."""
    n = round(seconds * RATE)
    x = 32768 * 10 ** (level_db / 20) * np.sin(2 * np.pi * freq * np.arange(n) / RATE + phase)
    if fade_ms:
        k = round(fade_ms * RATE / 1000)
        x[:k] *= np.arange(k) / k
        x[n - k:] *= 1 - np.arange(1, k + 1) / k
    x = np.round(x).astype(np.int16)
    return np.stack([x, x], axis=1)


def zeros(seconds: float) -> np.ndarray:
    return np.zeros((round(seconds * RATE), 2), np.int16)


def write_rec(path: Path, frames: np.ndarray, *, start_us: int = T0_US, block: int = BLOCK,
              wall_offset: float = WALL_OFFSET, tail: bytes = b"") -> Path:
    """One process's file: blocks of `block` frames, each due when its first sample is heard."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(encode_header(wall_time=start_us / 1e6 + wall_offset, mono_us=start_us))
        for i in range(0, len(frames), block):
            fh.write(encode_block(start_us + round(i * 1e6 / RATE), frames[i:i + block]))
        fh.write(tail)
    return path


def at(frame: int, start_us: int = T0_US) -> float:
    """Monotonic seconds of a frame of a stream that starts at start_us."""
    return start_us / 1e6 + frame / RATE


def joins(parts: list[np.ndarray]) -> list[int]:
    return np.cumsum([len(p) for p in parts])[:-1].tolist()


# --- the format ------------------------------------------------------------------------------------

def test_encoder_writes_the_documented_layout():
    header = encode_header(wall_time=1234.5, mono_us=987654321)
    assert header == struct.pack("<8sIIHdq", b"ONAIRREC", 1, 44100, 2, 1234.5, 987654321)
    assert len(header) == 34
    frames = np.array([[1, -1], [2, -2], [32767, -32768]], np.int16)
    block = encode_block(42, frames)
    assert block == struct.pack("<qi", 42, 3) + struct.pack("<6h", 1, -1, 2, -2, 32767, -32768)
    assert encode_block(42, frames.tobytes()) == block  # amem's raw PCM, as the worker has it
    assert aircheck.read_header(header) == aircheck.Header(1, 44100, 2, 1234.5, 987654321)


def test_encoder_refuses_what_is_not_int16_frames():
    with pytest.raises(TypeError):
        encode_block(0, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError):
        encode_block(0, b"\x00" * 6)  # one and a half stereo frames


def test_a_file_that_is_not_a_recording_is_refused(tmp_path):
    (tmp_path / "x.onair-rec").write_bytes(b"RIFF" + bytes(60))
    with pytest.raises(ValueError, match="not an air-check recording"):
        aircheck.load(tmp_path)


def test_files_of_different_sample_rates_cannot_be_merged(tmp_path):
    write_rec(tmp_path / "a.onair-rec", tone(300, 0.1))
    with (tmp_path / "b.onair-rec").open("wb") as fh:
        fh.write(encode_header(wall_time=0.0, mono_us=T0_US, rate=48000))
    with pytest.raises(ValueError, match="48000 Hz"):
        aircheck.load(tmp_path)


def test_a_file_killed_before_its_header_was_written_is_skipped(tmp_path):
    write_rec(tmp_path / "a.onair-rec", tone(300, 0.5))
    (tmp_path / "b.onair-rec").write_bytes(b"ONAIR")
    rec = aircheck.load(tmp_path)
    assert [f.path.name for f in rec.files] == ["a.onair-rec"]


def test_partial_block_at_the_end_of_a_file_is_ignored(tmp_path):
    frames = tone(300, 1.0)
    full_blocks = -(-len(frames) // BLOCK)
    partial = encode_block(T0_US + 1_000_000, tone(340, 0.1))[:12 + 100 * 4]  # killed mid-write
    write_rec(tmp_path / "a.onair-rec", frames, tail=partial)
    write_rec(tmp_path / "b.onair-rec", tone(380, 1.0), start_us=T0_US + 3_000_000,
              tail=encode_block(0, tone(380, 0.01))[:7])  # killed inside a block header

    rec = aircheck.load(tmp_path)

    assert len(rec.blocks) == 2 * full_blocks
    assert [f.tail_bytes for f in rec.files] == [len(partial), 7]
    assert rec.heard_seconds == pytest.approx(2.0, abs=1e-9)
    assert [round(s.freq_hz) for s in aircheck.segments(rec)] == [300, 380]
    assert aircheck.summary(rec)["partial_tail_bytes"] == len(partial) + 7


def test_an_empty_recording_has_nothing_to_report(tmp_path):
    rec = aircheck.load(tmp_path)
    assert (aircheck.silences(rec), aircheck.segments(rec)) == ([], [])
    report = aircheck.summary(rec)
    assert report["blocks"] == 0 and report["heard_seconds"] == 0.0
    json.dumps(report)


# --- gapless tracks ---------------------------------------------------------------------------------

def test_gapless_tones_across_a_restart_have_no_silence_and_sample_exact_joins(tmp_path):
    parts = [tone(f, s, phase=p) for f, s, p in zip(FREQS, [1.13, 0.87, 1.41, 1.02, 0.95],
                                                     [0.0, 1.0, 2.0, 3.0, 4.0], strict=True)]
    stream = np.concatenate(parts)
    cut = 150 * BLOCK  # the worker restarts in the middle of the third track; the stream goes on
    write_rec(tmp_path / "p1.onair-rec", stream[:cut])
    write_rec(tmp_path / "p2.onair-rec", stream[cut:], start_us=T0_US + round(cut * 1e6 / RATE))

    rec = aircheck.load(tmp_path)
    assert len(rec.files) == 2 and rec.gaps == [] and rec.overlaps == []
    assert aircheck.silences(rec, threshold_dbfs=-50.0, min_ms=20.0) == []

    for expected in (FREQS, None):  # snapped to the known tones, and found without them
        segs = aircheck.segments(rec, expected_freqs=expected)
        assert [round(s.freq_hz) for s in segs] == [round(f) for f in FREQS]
        found = aircheck.boundaries(segs)
        assert len(found) == 4
        for boundary, frame in zip(found, joins(parts), strict=True):
            assert abs(boundary.gap_ms) < 1.0
            assert abs(boundary.at_mono - at(frame)) < 0.002
    assert segs[0].start_mono == pytest.approx(at(0), abs=0.001)
    assert segs[-1].end_mono == pytest.approx(at(len(stream)), abs=0.001)


def test_due_times_with_rounding_jitter_and_clock_drift_are_still_one_gapless_stream(tmp_path):
    stream = np.concatenate([tone(300, 1.0), tone(400, 1.0)])
    rng = np.random.default_rng(7)
    path = tmp_path / "a.onair-rec"
    with path.open("wb") as fh:
        fh.write(encode_header(wall_time=T0_US / 1e6 + WALL_OFFSET, mono_us=T0_US))
        for i in range(0, len(stream), BLOCK):  # a clock 100 ppm fast, due times ±4 µs
            due = T0_US + round(i * 1e6 / (RATE * 1.0001)) + int(rng.integers(-4, 5))
            fh.write(encode_block(due, stream[i:i + BLOCK]))
    rec = aircheck.load(path)

    assert rec.gaps == [] and rec.overlaps == []
    assert aircheck.silences(rec) == []
    (boundary,) = aircheck.boundaries(aircheck.segments(rec, expected_freqs=[300, 400]))
    assert boundary.gap_ms == pytest.approx(0.0, abs=0.1)
    assert boundary.at_mono == pytest.approx(T0_US / 1e6 + 1.0 / 1.0001, abs=0.001)


def test_tones_that_fade_in_and_out_still_give_the_boundaries(tmp_path):
    parts = [tone(f, 1.2, fade_ms=50) for f in FREQS[:4]]
    write_rec(tmp_path / "a.onair-rec", np.concatenate(parts))
    rec = aircheck.load(tmp_path)

    found = aircheck.boundaries(aircheck.segments(rec, expected_freqs=FREQS))

    assert [(b.from_freq, b.to_freq) for b in found] == list(zip(FREQS[:3], FREQS[1:4], strict=True))
    for boundary, frame in zip(found, joins(parts), strict=True):
        assert abs(boundary.at_mono - at(frame)) < 0.002
        assert abs(boundary.gap_ms) < 1.0
    assert aircheck.silences(rec, min_ms=20.0) == []


# --- dead air ---------------------------------------------------------------------------------------

def test_a_gap_between_blocks_is_one_silence_and_the_boundary_gap(tmp_path):
    first, second = tone(300, 1.0), tone(400, 1.0)
    write_rec(tmp_path / "a.onair-rec", first)
    write_rec(tmp_path / "b.onair-rec", second, start_us=T0_US + 1_150_000)  # 150 ms later
    rec = aircheck.load(tmp_path)

    (silence,) = aircheck.silences(rec)
    assert silence.seconds == pytest.approx(0.150, abs=0.001)
    assert silence.start_mono == pytest.approx(at(len(first)), abs=1e-4)
    assert "gap" in silence.kind
    (boundary,) = aircheck.boundaries(aircheck.segments(rec, expected_freqs=[300, 400]))
    assert boundary.gap_ms == pytest.approx(150.0, abs=1.0)
    assert boundary.at_mono == pytest.approx(T0_US / 1e6 + 1.150, abs=0.002)


def test_digital_zero_inside_blocks_is_a_silence(tmp_path):
    parts = [tone(300, 1.01), zeros(0.300), tone(400, 1.0)]
    write_rec(tmp_path / "a.onair-rec", np.concatenate(parts))  # the zeros start mid-block
    rec = aircheck.load(tmp_path)
    window = 0.005

    (silence,) = aircheck.silences(rec)
    assert silence.kind == "quiet"
    assert silence.seconds == pytest.approx(0.300, abs=window)
    assert silence.start_mono == pytest.approx(at(len(parts[0])), abs=window)
    (boundary,) = aircheck.boundaries(aircheck.segments(rec, expected_freqs=[300, 400]))
    assert boundary.gap_ms == pytest.approx(300.0, abs=1.0)


def test_silences_shorter_than_the_minimum_are_not_reported(tmp_path):
    write_rec(tmp_path / "a.onair-rec", np.concatenate([tone(300, 0.5), zeros(0.012), tone(300, 0.5)]))
    rec = aircheck.load(tmp_path)
    assert aircheck.silences(rec, min_ms=20.0) == []
    (short,) = aircheck.silences(rec, min_ms=5.0)
    assert short.seconds == pytest.approx(0.012, abs=0.005)


def test_a_long_pause_is_one_silence_and_the_same_tone_after_it_is_no_boundary(tmp_path):
    write_rec(tmp_path / "a.onair-rec", tone(300, 0.6))
    write_rec(tmp_path / "b.onair-rec", tone(300, 0.6), start_us=T0_US + 5_600_000)  # paused 5 s
    write_rec(tmp_path / "c.onair-rec", tone(400, 0.6), start_us=T0_US + 6_200_000)
    rec = aircheck.load(tmp_path)

    (pause,) = aircheck.silences(rec)
    assert pause.kind == "gap" and pause.seconds == pytest.approx(5.0, abs=1e-4)
    segs = aircheck.segments(rec, expected_freqs=[300, 400])
    assert [s.freq_hz for s in segs] == [300, 300, 400]
    (boundary,) = aircheck.boundaries(segs)
    assert boundary.at_mono == pytest.approx(T0_US / 1e6 + 6.2, abs=0.002)
    assert abs(boundary.gap_ms) < 1.0


# --- overlaps ---------------------------------------------------------------------------------------

def test_two_processes_heard_at_once_are_reported_not_fatal(tmp_path):
    write_rec(tmp_path / "old.onair-rec", tone(300, 1.0))
    write_rec(tmp_path / "new.onair-rec", tone(400, 1.0), start_us=T0_US + 900_000)  # 100 ms early
    rec = aircheck.load(tmp_path)

    (overlap,) = rec.overlaps
    assert overlap.seconds == pytest.approx(0.1, abs=1e-4)
    assert {Path(p).name for p in overlap.files} == {"old.onair-rec", "new.onair-rec"}
    assert rec.heard_seconds == pytest.approx(1.9, abs=1e-4)
    (boundary,) = aircheck.boundaries(aircheck.segments(rec, expected_freqs=[300, 400]))
    assert boundary.gap_ms == pytest.approx(-100.0, abs=2.0)


def test_a_crossfade_reads_as_a_negative_gap(tmp_path):
    a, b = tone(300, 1.0, fade_ms=30).astype(np.int32), tone(400, 1.0, fade_ms=30).astype(np.int32)
    k = round(0.030 * RATE)
    mixed = np.concatenate([a[:-k], a[-k:] + b[:k], b[k:]]).astype(np.int16)
    write_rec(tmp_path / "a.onair-rec", mixed)

    (boundary,) = aircheck.boundaries(aircheck.segments(aircheck.load(tmp_path), expected_freqs=[300, 400]))

    assert boundary.gap_ms == pytest.approx(-30.0, abs=2.0)
    assert boundary.at_mono == pytest.approx(at(len(a) - k), abs=0.002)


# --- real MP3 audio ---------------------------------------------------------------------------------

def _ffmpeg_pcm(*args: str) -> np.ndarray:
    from library.analysis import ffmpeg_binary

    out = subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", *args,
                          "-f", "s16le", "-ac", "2", "-ar", str(RATE), "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, "<i2").reshape(-1, 2)


def test_decoded_mp3_tracks_played_back_to_back_join_where_the_files_end(tmp_path):
    from tests.library.audio import make_tone

    freqs = [300.0, 400.0, 340.0, 500.0]
    parts = [_ffmpeg_pcm("-i", str(make_tone(tmp_path / f"t{i}.mp3", seconds=1.0, freq=f, level_db=-12)))
             for i, f in enumerate(freqs)]
    write_rec(tmp_path / "rec" / "a.onair-rec", np.concatenate(parts))
    rec = aircheck.load(tmp_path / "rec")

    found = aircheck.boundaries(aircheck.segments(rec, expected_freqs=freqs))

    assert [(b.from_freq, b.to_freq) for b in found] == list(zip(freqs, freqs[1:], strict=False))
    for boundary, frame in zip(found, joins(parts), strict=True):
        assert abs(boundary.at_mono - at(frame)) < 0.002
        assert abs(boundary.gap_ms) < 2.0


def test_a_gap_inside_an_mp3_stream_is_measured_through_the_codec_smear(tmp_path):
    # What an Icecast listener decodes: one encoder across the join, 30 ms of silence in it.
    parts = [tone(300, 1.0), zeros(0.030), tone(400, 1.0), tone(340, 1.0)]
    raw = tmp_path / "stream.raw"
    raw.write_bytes(np.concatenate(parts).tobytes())
    mp3 = tmp_path / "stream.mp3"
    from tests.library.audio import ffmpeg

    ffmpeg("-f", "s16le", "-ar", str(RATE), "-ac", "2", "-i", str(raw), "-c:a", "libmp3lame", "-b:a", "64k",
           str(mp3))
    write_rec(tmp_path / "rec" / "a.onair-rec", _ffmpeg_pcm("-i", str(mp3)))
    rec = aircheck.load(tmp_path / "rec")

    found = aircheck.boundaries(aircheck.segments(rec, expected_freqs=[300, 340, 400]))

    assert [round(b.gap_ms) for b in found] == [30, 0]
    assert abs(found[0].gap_ms - 30.0) < 2.0 and abs(found[1].gap_ms) < 2.0
    assert abs(found[0].at_mono - at(len(parts[0]) + len(parts[1]))) < 0.002


# --- clocks and the report --------------------------------------------------------------------------

def test_monotonic_times_map_to_wall_time_by_each_process_header(tmp_path):
    write_rec(tmp_path / "a.onair-rec", tone(300, 1.0))
    later = T0_US + 2_000_000
    write_rec(tmp_path / "b.onair-rec", tone(400, 1.0), start_us=later, wall_offset=WALL_OFFSET + 0.003)
    rec = aircheck.load(tmp_path)

    assert aircheck.to_wall(rec, T0_US / 1e6 + 0.5) == pytest.approx(T0_US / 1e6 + 0.5 + WALL_OFFSET, abs=1e-6)
    assert aircheck.to_wall(rec, later / 1e6 + 0.5) == pytest.approx(later / 1e6 + 0.5 + WALL_OFFSET + 0.003,
                                                                     abs=1e-6)
    when = aircheck.to_datetime(rec, T0_US / 1e6)
    assert when == datetime.fromtimestamp(1_790_000_000.0, tz=UTC)
    assert aircheck.from_wall(rec, when) == pytest.approx(T0_US / 1e6, abs=1e-6)
    assert aircheck.clock_spread_ms(rec) == pytest.approx(3.0, abs=1e-3)


def test_summary_counts_dead_air_and_boundaries_as_json(tmp_path):
    write_rec(tmp_path / "a.onair-rec", np.concatenate([tone(300, 1.0), zeros(0.040), tone(340, 1.0)]))
    write_rec(tmp_path / "b.onair-rec", tone(380, 1.0), start_us=T0_US + 2_640_000)  # 600 ms of nothing

    report = json.loads(json.dumps(aircheck.summary(aircheck.load(tmp_path), expected_freqs=[300, 340, 380])))

    assert report["files"] == 2 and report["writer_gaps"] == 1
    assert report["silences"] == 2 and report["silences_over_0_5s"] == 1
    assert report["max_silence_seconds"] == pytest.approx(0.6, abs=0.001)
    assert report["heard_seconds"] == pytest.approx(3.04, abs=1e-4)
    assert report["span_seconds"] == pytest.approx(3.64, abs=1e-4)
    assert report["segments"] == 3 and report["boundaries"] == 2
    assert report["max_boundary_gap_ms"] == pytest.approx(600.0, abs=1.0)
    assert report["min_boundary_gap_ms"] == pytest.approx(40.0, abs=1.0)
    assert report["boundaries_over_limit"] == 2
    assert report["start_wall"] == datetime.fromtimestamp(1_790_000_000.0, tz=UTC).isoformat()


def test_command_line_prints_the_summary(tmp_path, capsys):
    write_rec(tmp_path / "a.onair-rec", np.concatenate([tone(300, 0.5), tone(400, 0.5)]))
    assert aircheck.main([str(tmp_path), "--expected", "300,400", "--list"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["boundaries"] == 1 and len(report["boundary_list"]) == 1


# --- speed and memory (on demand) -------------------------------------------------------------------

BENCH = """
import json, sys, time
from playback import aircheck
started = time.perf_counter()
with aircheck.load(sys.argv[1]) as rec:
    report = aircheck.summary(rec, expected_freqs=json.loads(sys.argv[2]))
report["analysis_seconds"] = round(time.perf_counter() - started, 2)
# VmHWM, not ru_maxrss: ru_maxrss would carry the parent's peak over the fork and exec.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
report["peak_rss_mb"] = round(int(hwm.split()[1]) / 1024)
print(json.dumps(report))
"""


@pytest.mark.skipif(not os.environ.get("AIRCHECK_BENCH_MINUTES"),
                    reason="set AIRCHECK_BENCH_MINUTES=60 to time an hour's analysis")
def test_speed_and_memory_of_a_long_recording(tmp_path):
    """Prints the figures; asserts only what was found. Run with -s to see them."""
    minutes = float(os.environ["AIRCHECK_BENCH_MINUTES"])
    tracks = max(2, round(minutes / 3))
    freqs = [300.0 + 40 * (i % 20) for i in range(tracks)]
    seconds = minutes * 60 / tracks
    start_us, restart = T0_US, tracks // 2
    for half, chosen in enumerate((freqs[:restart], freqs[restart:])):
        stream = np.concatenate([tone(f, seconds, fade_ms=50) for f in chosen])
        write_rec(tmp_path / f"p{half}.onair-rec", stream, start_us=start_us)
        start_us += round(len(stream) * 1e6 / RATE) + 2_000_000  # the restart takes 2 s
        del stream
    completed = subprocess.run([sys.executable, "-c", BENCH, str(tmp_path), json.dumps(sorted(set(freqs)))],
                               capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    report = json.loads(completed.stdout)
    print(f"\n{minutes:g} min of stereo 44.1 kHz: analysed in {report['analysis_seconds']} s, "
          f"peak RSS {report['peak_rss_mb']} MB")
    assert report["silences"] == 1 and report["max_silence_seconds"] == pytest.approx(2.0, abs=0.01)
    assert report["boundaries"] == tracks - 1
