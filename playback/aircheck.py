"""Air check: read what the playback worker's listeners heard, and measure it.

The worker's `record` output (playback/output.py) writes every buffer at the
instant it is heard, one file per worker process. This module is the single
definition of that format (`encode_header`, `encode_block`) and its reader and
analysis: dead air (`silences`), which tone was on air when (`segments`), how
the tracks joined (`boundaries`), and monotonic → wall-clock time (`to_wall`)
to compare with the as-run log.

File format (`*.onair-rec`), all little-endian:

    header  <8sIIHdq  (34 bytes)  b"ONAIRREC", version=1, sample_rate, channels,
                                  wall_time (time.time()), mono_us (CLOCK_MONOTONIC µs,
                                  taken at the same moment as wall_time)
    block   <qi       (12 bytes)  due_us (CLOCK_MONOTONIC µs at which the block's first
                                  sample is heard), nframes; then nframes*channels int16
                                  samples, interleaved
    ...     blocks until EOF; a partial last block (kill -9) is ignored.

Nothing is written while paused or stopped: a gap between blocks is silence the
listener heard. Files of several processes share the monotonic clock and are
merged by due_us.

Measurements, and how they are made:

- Levels are the RMS over 5 ms windows of the louder channel, in dBFS where
  full scale is 32768 (a full-scale sine reads -3 dBFS). The louder channel,
  not the mono mix, so that anti-phase stereo does not read as silence; for
  material with both channels alike it is the same thing.
- A silence is a gap between blocks (exact to the microsecond) or a run of
  windows under the threshold; a quiet run's edges are then moved out to the
  sample, to the last/first sample whose peak reaches the threshold.
- Tones: each window (20 ms) gets the frequency of its spectral peak (Hann
  window, FFT zero-padded x2 or more, log-parabolic interpolation), snapped to
  the nearest expected frequency, and is kept only if one sinusoid of that
  frequency (with a linear envelope, so fades fit) explains >= 80 % of its
  energy: a window straddling two tones, or noise, belongs to no segment.
- Segment edges are then refined to the sample by least squares at each join:
  the region around it is modelled as "tone A until e, tone B from s, nothing
  else", both tones with linear envelopes, and (e, s) chosen to explain the
  most energy; what neither tone explains is the gap (FACTS.md: MP3 pre-echo
  hides silence from a threshold). s < e (both tones at once, a crossfade) is
  tried too and kept only if it explains clearly more.

Memory: the samples are read from the files in chunks of ~12 s; nothing the
size of the recording is held in memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = [
    "BLOCK", "HEADER", "MAGIC", "SUFFIX", "VERSION", "Boundary", "Header", "Overlap", "Recording",
    "RecordingFile", "Segment", "Silence", "boundaries", "clock_spread_ms", "encode_block", "encode_header",
    "from_wall", "load", "read_header", "segments", "silences", "summary", "to_datetime", "to_wall",
]

MAGIC = b"ONAIRREC"
VERSION = 1
HEADER = struct.Struct("<8sIIHdq")
BLOCK = struct.Struct("<qi")
SUFFIX = ".onair-rec"
FULL_SCALE = 32768.0

LEVEL_WINDOW_S = 0.005
MAX_FILL_S = 1.0  # a gap longer than this between blocks starts a new run (not filled with zeros)
CHUNK_FRAMES = 1 << 19  # ~11.9 s at 44.1 kHz: the unit of reading
FFT_BATCH = 256
MIN_PURITY = 0.8
OVERLAP_GAIN = 0.5  # a crossfade fit must remove this share of what the join fit leaves unexplained
OVERLAP_MIN_POWER = 0.1  # and be no more than 10 dB quieter than the tones on either side
JOIN_MAX_S = 1.0  # segments closer than this are refined together (a gap, a join or a crossfade)
FMIN_HZ = 20.0
FLOOR_DB = -200.0


# --- the format ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    version: int
    rate: int
    channels: int
    wall_time: float  # time.time() when the file was opened
    mono_us: int  # CLOCK_MONOTONIC µs at that same moment

    @property
    def wall_offset(self) -> float:
        """wall seconds - monotonic seconds, for this process."""
        return self.wall_time - self.mono_us / 1e6


def encode_header(*, wall_time: float, mono_us: int, rate: int = 44100, channels: int = 2) -> bytes:
    """The 34-byte file header."""
    return HEADER.pack(MAGIC, VERSION, int(rate), int(channels), float(wall_time), int(mono_us))


def encode_block(due_us: int, frames: np.ndarray | bytes | bytearray | memoryview, *,
                 channels: int = 2) -> bytes:
    """One block: header + samples.

    `frames` is an int16 array of shape (n, channels) (or (n,) for mono), or the raw
    interleaved little-endian int16 PCM (bytes-like, as libvlc's amem hands it over).
    """
    if isinstance(frames, bytes | bytearray | memoryview):
        pcm = bytes(frames)
        frame_bytes = 2 * channels
        if len(pcm) % frame_bytes:
            raise ValueError(f"{len(pcm)} bytes is not a whole number of {channels}-channel int16 frames")
        return BLOCK.pack(int(due_us), len(pcm) // frame_bytes) + pcm
    array = np.asarray(frames)
    if array.dtype != np.int16:
        raise TypeError(f"frames must be int16, not {array.dtype}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"frames must have shape (n, channels), not {array.shape}")
    return BLOCK.pack(int(due_us), array.shape[0]) + array.astype("<i2", copy=False).tobytes()


def read_header(data: bytes, path: str | Path = "?") -> Header:
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, rate, channels, wall_time, mono_us = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"{path}: not an air-check recording (magic {magic!r})")
    if version != VERSION:
        raise ValueError(f"{path}: format version {version}, this reader knows {VERSION}")
    if rate <= 0 or channels <= 0:
        raise ValueError(f"{path}: rate {rate}, channels {channels}")
    return Header(version, rate, channels, wall_time, mono_us)


# --- results ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordingFile:
    path: Path
    header: Header
    blocks: int
    frames: int
    first_mono: float | None  # due time of its first block, monotonic seconds
    end_mono: float | None  # end of its last complete block
    tail_bytes: int  # a partial block at the end (ignored)


@dataclass(frozen=True)
class Overlap:
    """Blocks that would be heard at the same time (two processes at once): summed in the analysis."""
    start_mono: float
    end_mono: float
    seconds: float
    files: tuple[str, ...]


@dataclass(frozen=True)
class Silence:
    start_mono: float
    end_mono: float
    seconds: float
    kind: str = "quiet"  # "gap": nothing was written; "quiet": samples under the threshold; "gap+quiet"


@dataclass(frozen=True)
class Segment:
    freq_hz: float
    start_mono: float
    end_mono: float

    @property
    def seconds(self) -> float:
        return self.end_mono - self.start_mono


@dataclass(frozen=True)
class Boundary:
    from_freq: float
    to_freq: float
    at_mono: float  # the first sample of the new tone
    gap_ms: float  # next.start - previous.end: 0 for a sample-exact join, < 0 for an overlap


@dataclass(frozen=True)
class _Run:
    """Blocks that follow each other within MAX_FILL_S: one sample grid, gaps filled with zeros."""
    b0: int
    b1: int
    frames: int


# --- the recording ---------------------------------------------------------------------------------

class Recording:
    """Every complete block of every file, merged by due time.

    `blocks` is a structured array sorted by due_us with fields due_us, frames, file (index in
    `files`), offset (of the samples in that file), run and pos (frame index within the run).
    """

    def __init__(self, files: list[RecordingFile], blocks: np.ndarray, rate: int, channels: int) -> None:
        self.files = files
        self.rate = rate
        self.channels = channels
        self.blocks = blocks
        self.gaps: list[tuple[float, float]] = []  # (start_mono, end_mono) where nothing was written
        self.overlaps: list[Overlap] = []
        self._runs: list[_Run] = []
        self._fds: dict[int, int] = {}
        self._cache: dict = {}
        self._finalizer = weakref.finalize(self, _close_fds, self._fds)
        self._place()

    # -- layout --

    def _place(self) -> None:
        """Lay the blocks on per-run sample grids; find gaps and overlaps."""
        b = self.blocks
        n = len(b)
        period = 1e6 / self.rate
        due = b["due_us"].tolist()
        frames = b["frames"].tolist()
        fileno = b["file"].tolist()
        pos = np.zeros(n, np.int64)
        run = np.zeros(n, np.int32)
        overlaps: list[tuple[float, float, set[int]]] = []
        prev_end = -math.inf
        prev_end_idx = prev_pos = run_start = 0
        prev_file = -1
        r = -1
        for i in range(n):
            d, f = due[i], frames[i]
            gap = d - prev_end
            if r < 0 or gap > MAX_FILL_S * 1e6:
                if r >= 0:
                    self._runs.append(_Run(run_start, i, prev_end_idx))
                    self.gaps.append((prev_end / 1e6, d / 1e6))
                r += 1
                run_start = i
                p = 0
            else:
                k = 0 if abs(gap) < period else round(gap / period)
                if k > 0:
                    self.gaps.append((prev_end / 1e6, d / 1e6))
                elif k < 0:
                    end = min(prev_end, d + f * period)
                    if overlaps and (d - period) / 1e6 <= overlaps[-1][1]:
                        last = overlaps[-1]
                        overlaps[-1] = (last[0], max(last[1], end / 1e6), last[2] | {prev_file, fileno[i]})
                    else:
                        overlaps.append((d / 1e6, end / 1e6, {prev_file, fileno[i]}))
                p = max(prev_end_idx + k, prev_pos)
            pos[i] = p
            run[i] = r
            prev_pos = p
            end_us = d + f * period
            if end_us > prev_end or i == run_start:
                prev_end, prev_end_idx, prev_file = end_us, p + f, fileno[i]
            else:
                prev_end_idx = max(prev_end_idx, p + f)
        if r >= 0:
            self._runs.append(_Run(run_start, n, prev_end_idx))
        b["pos"] = pos
        b["run"] = run
        self._ends = np.zeros(n, np.int64)  # per run: the furthest frame reached so far
        for r in self._runs:
            self._ends[r.b0:r.b1] = np.maximum.accumulate(pos[r.b0:r.b1] + b["frames"][r.b0:r.b1])
        self.overlaps = [Overlap(s, e, e - s, tuple(str(self.files[k].path) for k in sorted(fs)))
                         for s, e, fs in overlaps]

    # -- facts --

    @property
    def start_mono(self) -> float | None:
        return float(self.blocks["due_us"][0]) / 1e6 if len(self.blocks) else None

    @property
    def end_mono(self) -> float | None:
        if not len(self.blocks):
            return None
        return float(np.max(self.blocks["due_us"] + self.blocks["frames"] * 1e6 / self.rate)) / 1e6

    @property
    def heard_seconds(self) -> float:
        """Seconds of audio the listener heard (overlapping blocks counted once)."""
        return float(self.blocks["frames"].sum()) / self.rate - sum(o.seconds for o in self.overlaps)

    # -- samples --

    def _fd(self, index: int) -> int:
        fd = self._fds.get(index)
        if fd is None:
            fd = self._fds[index] = os.open(self.files[index].path, os.O_RDONLY)
        return fd

    def close(self) -> None:
        _close_fds(self._fds)

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, run: int, i0: int, i1: int) -> np.ndarray:
        """Frames [i0, i1) of a run as float32 (n, channels); gaps read as zeros, overlaps add up."""
        r = self._runs[run]
        i0, i1 = max(0, i0), min(r.frames, i1)
        out = np.zeros((max(0, i1 - i0), self.channels), np.float32)
        if i1 <= i0:
            return out
        lo = r.b0 + int(np.searchsorted(self._ends[r.b0:r.b1], i0, side="right"))
        hi = r.b0 + int(np.searchsorted(self.blocks["pos"][r.b0:r.b1], i1, side="left"))
        rows = self.blocks[lo:hi]
        frame_bytes = 2 * self.channels
        for p, n, fileno, offset in zip(rows["pos"].tolist(), rows["frames"].tolist(), rows["file"].tolist(),
                                        rows["offset"].tolist(), strict=True):
            a, e = max(i0, p), min(i1, p + n)
            if e <= a:
                continue
            data = os.pread(self._fd(fileno), (e - a) * frame_bytes, offset + (a - p) * frame_bytes)
            out[a - i0:e - i0] += np.frombuffer(data, "<i2").reshape(-1, self.channels)
        return out

    def samples(self, start_mono: float, end_mono: float) -> np.ndarray:
        """What was heard from `start_mono` to `end_mono` (one run), float32 (n, channels)."""
        for run, r in enumerate(self._runs):
            first, last = self.time_of(run, 0), self.time_of(run, r.frames)
            if first - 1e-3 <= start_mono <= last:
                pos = self.blocks["pos"][r.b0:r.b1]
                due = self.blocks["due_us"][r.b0:r.b1] / 1e6
                k = max(0, int(np.searchsorted(due, start_mono, side="right")) - 1)
                i0 = int(pos[k] + round((start_mono - due[k]) * self.rate))
                return self.read(run, i0, i0 + round((end_mono - start_mono) * self.rate))
        return np.zeros((0, self.channels), np.float32)

    def time_of(self, run: int, index):
        """Monotonic seconds of frame `index` (scalar or array) of a run."""
        r = self._runs[run]
        pos = self.blocks["pos"][r.b0:r.b1]
        due = self.blocks["due_us"][r.b0:r.b1]
        idx = np.asarray(index, dtype=np.int64)
        k = np.clip(np.searchsorted(pos, idx, side="right") - 1, 0, len(pos) - 1)
        t = (due[k] + (idx - pos[k]) * 1e6 / self.rate) / 1e6
        return float(t) if np.ndim(t) == 0 else t


def _close_fds(fds: dict[int, int]) -> None:
    while fds:
        _index, fd = fds.popitem()
        try:
            os.close(fd)
        except OSError:
            pass


_BLOCK_DTYPE = np.dtype([("due_us", np.int64), ("frames", np.int64), ("file", np.int32),
                         ("offset", np.int64), ("run", np.int32), ("pos", np.int64)])


def _paths(paths_or_dir) -> list[Path]:
    items = [paths_or_dir] if isinstance(paths_or_dir, str | os.PathLike) else list(paths_or_dir)
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(path.glob(f"*{SUFFIX}"))
        else:
            found.append(path)
    return found


def _scan_file(path: Path, index: int) -> tuple[RecordingFile, list[tuple[int, int, int, int]]]:
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        header = read_header(os.pread(fd, HEADER.size, 0), path)
        frame_bytes = 2 * header.channels
        rows: list[tuple[int, int, int, int]] = []
        offset = HEADER.size
        while offset + BLOCK.size <= size:
            due_us, nframes = BLOCK.unpack(os.pread(fd, BLOCK.size, offset))
            end = offset + BLOCK.size + nframes * frame_bytes
            if nframes < 0 or end > size:
                break
            if nframes:
                rows.append((due_us, nframes, index, offset + BLOCK.size))
            offset = end
    finally:
        os.close(fd)
    frames = sum(r[1] for r in rows)
    first = rows[0][0] / 1e6 if rows else None
    last = max(r[0] + r[1] * 1e6 / header.rate for r in rows) / 1e6 if rows else None
    return RecordingFile(path, header, len(rows), frames, first, last, size - offset), rows


def load(paths_or_dir: str | os.PathLike | Iterable[str | os.PathLike]) -> Recording:
    """All blocks of all the files (a folder means its *.onair-rec files), merged by due time.

    A file too short for its header (killed at birth) is skipped; one with another sample rate
    or channel count than the others is an error.
    """
    files: list[RecordingFile] = []
    rows: list[tuple[int, int, int, int]] = []
    for path in _paths(paths_or_dir):
        if path.stat().st_size < HEADER.size:
            continue
        info, file_rows = _scan_file(path, len(files))
        if files and (info.header.rate, info.header.channels) != (files[0].header.rate,
                                                                  files[0].header.channels):
            raise ValueError(f"{path}: {info.header.rate} Hz x {info.header.channels}, but "
                             f"{files[0].path} is {files[0].header.rate} Hz x {files[0].header.channels}")
        files.append(info)
        rows += file_rows
    blocks = np.zeros(len(rows), _BLOCK_DTYPE)
    if rows:
        table = np.array(rows, dtype=np.int64)
        order = np.lexsort((table[:, 3], table[:, 2], table[:, 0]))
        table = table[order]
        blocks["due_us"], blocks["frames"] = table[:, 0], table[:, 1]
        blocks["file"], blocks["offset"] = table[:, 2], table[:, 3]
    rate = files[0].header.rate if files else 44100
    channels = files[0].header.channels if files else 2
    return Recording(files, blocks, rate, channels)


# --- wall time -------------------------------------------------------------------------------------

def _file_for(rec: Recording, mono_s: float) -> RecordingFile:
    if not rec.files:
        raise ValueError("an empty recording has no clock")
    ordered = sorted(rec.files, key=lambda f: f.header.mono_us)
    chosen = ordered[0]
    for info in ordered:
        if info.header.mono_us / 1e6 <= mono_s:
            chosen = info
    return chosen


def to_wall(rec: Recording, mono_s: float) -> float:
    """time.time() seconds for a monotonic instant, by the header of the process recording then."""
    return mono_s + _file_for(rec, mono_s).header.wall_offset


def to_datetime(rec: Recording, mono_s: float) -> datetime:
    """An aware UTC datetime, comparable with the as-run rows."""
    return datetime.fromtimestamp(to_wall(rec, mono_s), tz=UTC)


def from_wall(rec: Recording, wall: float | datetime) -> float:
    """Monotonic seconds for a wall-clock instant (a UNIX time or an aware datetime)."""
    seconds = wall.timestamp() if isinstance(wall, datetime) else float(wall)
    mono = seconds - rec.files[0].header.wall_offset
    return seconds - _file_for(rec, mono).header.wall_offset


def clock_spread_ms(rec: Recording) -> float:
    """How far the files' wall/monotonic relations disagree (should be a few ms at most)."""
    offsets = [f.header.wall_offset for f in rec.files]
    return (max(offsets) - min(offsets)) * 1000 if offsets else 0.0


# --- the scan: levels and tones per window, chunk by chunk -----------------------------------------

@dataclass
class _RunScan:
    level_ms: np.ndarray  # mean square of the louder channel per 5 ms window
    win_db: np.ndarray | None = None  # per tone window: RMS dBFS of the louder channel
    freq: np.ndarray | None = None  # snapped frequency, nan when silent or unknown
    purity: np.ndarray | None = None


def _db(mean_square: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.maximum(10 * np.log10(mean_square / FULL_SCALE**2), FLOOR_DB)


def _peak_freqs(x: np.ndarray, rate: int, nfft: int) -> np.ndarray:
    """Frequency of the spectral peak of each row (rows already without DC)."""
    hann = np.hanning(x.shape[1] + 2)[1:-1].astype(x.dtype)
    out = np.empty(len(x))
    kmin = max(1, math.ceil(FMIN_HZ * nfft / rate))
    for s in range(0, len(x), FFT_BATCH):
        spec = np.fft.rfft((x[s:s + FFT_BATCH] * hann).astype(np.float64), n=nfft)
        power = spec.real * spec.real + spec.imag * spec.imag
        k = np.argmax(power[:, kmin:-1], axis=1) + kmin
        rows = np.arange(len(k))
        a, b, c = (np.log(power[rows, k + d].astype(np.float64) + 1e-12) for d in (-1, 0, 1))
        denom = a - 2 * b + c
        delta = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1), 0.0)
        out[s:s + FFT_BATCH] = (k + np.clip(delta, -0.5, 0.5)) * rate / nfft
    return out


def _basis(freq, n: np.ndarray, length: int, rate: int) -> np.ndarray:
    """cos, sin, t·cos, t·sin (t centred, in units of `length`) on the last axis."""
    angle = 2 * np.pi * np.asarray(freq, dtype=np.float64)[..., None] / rate * n
    c, s = np.cos(angle), np.sin(angle)
    t = (n - length / 2) / length
    return np.stack([c, s, c * t, s * t], axis=-2)


class _Purity:
    """Share of a window's energy that one sinusoid of a given frequency, with a linear
    envelope, explains: the squared norm of its projection on an orthonormal basis of
    cos, sin, t·cos, t·sin (bases cached per 0.25 Hz)."""

    def __init__(self, width: int, rate: int) -> None:
        self.width, self.rate = width, rate
        self.n = np.arange(width, dtype=np.float64)
        self.bases: dict[float, np.ndarray] = {}

    def basis(self, freq: float) -> np.ndarray:
        q = self.bases.get(freq)
        if q is None:
            q = np.linalg.qr(_basis(freq, self.n, self.width, self.rate).T)[0].astype(np.float32)
            if len(self.bases) >= 512:  # music, not test tones: keep the memory bounded
                self.bases.clear()
            self.bases[freq] = q
        return q

    def __call__(self, x: np.ndarray, freqs: np.ndarray) -> np.ndarray:
        keys = np.round(freqs * 4) / 4
        energy = np.einsum("ij,ij->i", x, x)
        out = np.zeros(len(x))
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            coef = x[rows] @ self.basis(float(key))
            out[rows] = np.einsum("ij,ij->i", coef, coef) / np.maximum(energy[rows], 1e-12)
        return np.clip(out, 0.0, 1.0)


def _snap(est: np.ndarray, expected: np.ndarray | None, tolerance: float) -> np.ndarray:
    if expected is None:
        return est
    idx = np.clip(np.searchsorted(expected, est), 1, len(expected) - 1) if len(expected) > 1 else \
        np.zeros(len(est), np.int64)
    if len(expected) > 1:
        left = expected[idx - 1]
        right = expected[idx]
        near = np.where(np.abs(est - left) <= np.abs(est - right), left, right)
    else:
        near = np.full(len(est), expected[0])
    return np.where(np.abs(est - near) <= tolerance, near, np.nan)


def _window_sums(sq: np.ndarray, width: int) -> np.ndarray:
    """Per channel, sums over consecutive windows of `width` frames (sq is (channels, m), m a multiple)."""
    return sq.reshape(sq.shape[0], -1, width).sum(axis=2)


def _scan(rec: Recording, *, window_ms: float | None, expected: tuple[float, ...] | None,
          snap_tolerance: float, floor_db: float) -> list[_RunScan]:
    """One pass over the samples, chunk by chunk: 5 ms levels, and per tone window its level,
    snapped frequency and purity."""
    key = ("scan", window_ms, expected, snap_tolerance, floor_db)
    if key in rec._cache:
        return rec._cache[key]
    rate, ch = rec.rate, rec.channels
    lw = max(1, round(rate * LEVEL_WINDOW_S))
    w = max(16, round(rate * window_ms / 1000)) if window_ms else None
    nfft = 1 << max(10, math.ceil(math.log2(2 * w))) if w else 0
    chunk = w * max(1, CHUNK_FRAMES // w) if w else CHUNK_FRAMES
    exp_arr = np.array(sorted(expected), dtype=np.float64) if expected else None
    floor_ms = FULL_SCALE**2 * 10 ** (floor_db / 10)
    purity = _Purity(w, rate) if w else None
    scans: list[_RunScan] = []
    for run_no, run in enumerate(rec._runs):
        levels: list[np.ndarray] = []
        carry = np.zeros((ch, 0), np.float32)
        win_db: list[np.ndarray] = []
        freqs: list[np.ndarray] = []
        purities: list[np.ndarray] = []
        for c0 in range(0, run.frames, chunk):
            xt = np.ascontiguousarray(rec.read(run_no, c0, c0 + chunk).T)  # (channels, m)
            sq = xt * xt
            buf = np.concatenate([carry, sq], axis=1) if carry.shape[1] else sq
            full = buf.shape[1] // lw
            levels.append(_window_sums(buf[:, :full * lw], lw).max(axis=0).astype(np.float64) / lw)
            carry = buf[:, full * lw:]
            if not w:
                continue
            m = xt.shape[1]
            nw = -(-m // w)
            pad = nw * w - m
            if pad:
                xt = np.concatenate([xt, np.zeros((ch, pad), np.float32)], axis=1)
                sq = np.concatenate([sq, np.zeros((ch, pad), np.float32)], axis=1)
            counts = np.full(nw, w, np.float64)
            counts[-1] = w - pad
            ms = _window_sums(sq, w).max(axis=0) / counts
            win_db.append(_db(ms))
            f = np.full(nw, np.nan)
            pur = np.zeros(nw)
            active = np.flatnonzero(ms > floor_ms)
            if len(active):
                frames = (xt.sum(axis=0) / ch).reshape(nw, w)[active]
                frames -= frames.mean(axis=1, keepdims=True)
                snapped = _snap(_peak_freqs(frames, rate, nfft), exp_arr, snap_tolerance)
                known = np.isfinite(snapped)
                f[active] = snapped
                if known.any():
                    pur[active[known]] = purity(frames[known], snapped[known])
            freqs.append(f)
            purities.append(pur)
        if carry.shape[1]:
            levels.append(np.array([carry.sum(axis=1, dtype=np.float64).max() / carry.shape[1]]))
        scan = _RunScan(np.concatenate(levels) if levels else np.zeros(0))
        if w:
            scan.win_db = np.concatenate(win_db) if win_db else np.zeros(0)
            scan.freq = np.concatenate(freqs) if freqs else np.zeros(0)
            scan.purity = np.concatenate(purities) if purities else np.zeros(0)
        scans.append(scan)
    rec._cache[key] = scans
    rec._cache["levels"] = scans
    return scans


def _levels(rec: Recording) -> list[_RunScan]:
    if "levels" in rec._cache:
        return rec._cache["levels"]
    return _scan(rec, window_ms=None, expected=None, snap_tolerance=0.0, floor_db=FLOOR_DB)


# --- silences --------------------------------------------------------------------------------------

def silences(rec: Recording, *, threshold_dbfs: float = -50.0, min_ms: float = 20.0) -> list[Silence]:
    """Where the listener heard nothing: gaps between blocks, and runs of 5 ms windows whose RMS
    (louder channel) is under `threshold_dbfs`, their edges moved out to the sample. Only
    silences of at least `min_ms` are returned."""
    intervals: list[tuple[float, float, str]] = [(s, e, "gap") for s, e in rec.gaps]
    lw = max(1, round(rec.rate * LEVEL_WINDOW_S))
    threshold_ms = FULL_SCALE**2 * 10 ** (threshold_dbfs / 10)
    threshold_amp = FULL_SCALE * 10 ** (threshold_dbfs / 20)
    for run_no, scan in enumerate(_levels(rec)):
        run = rec._runs[run_no]
        quiet = scan.level_ms < threshold_ms
        if not quiet.any():
            continue
        edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.view(np.int8), [0]])))
        for w0, w1 in zip(edges[::2], edges[1::2], strict=True):
            start, end = int(w0) * lw, min(int(w1) * lw, run.frames)
            if start > 0:  # out into the loud window before: after its last loud sample
                peaks = np.abs(rec.read(run_no, start - lw, start)).max(axis=1)
                loud = np.flatnonzero(peaks >= threshold_amp)
                start = start - lw + (int(loud[-1]) + 1 if len(loud) else 0)
            if end < run.frames:  # into the loud window after: up to its first loud sample
                peaks = np.abs(rec.read(run_no, end, end + lw)).max(axis=1)
                loud = np.flatnonzero(peaks >= threshold_amp)
                end += int(loud[0]) if len(loud) else len(peaks)
            intervals.append((rec.time_of(run_no, start), rec.time_of(run_no, end), "quiet"))
    intervals.sort()
    merged: list[list] = []
    for s, e, kind in intervals:
        if merged and s <= merged[-1][1] + 1e-6:
            last = merged[-1]
            last[1] = max(last[1], e)
            last[2].add(kind)
        else:
            merged.append([s, e, {kind}])
    found = []
    for s, e, kinds in merged:
        if (e - s) * 1000 >= min_ms - 1e-6:
            found.append(Silence(s, e, e - s, "+".join(k for k in ("gap", "quiet") if k in kinds)))
    return found


# --- tones -----------------------------------------------------------------------------------------

@dataclass
class _Coarse:
    run: int
    i0: int  # frames within the run
    i1: int
    freq: float


def _coarse_segments(rec: Recording, scans: list[_RunScan], w: int, threshold_db: float,
                     expected: bool, tolerance: float) -> list[_Coarse]:
    found: list[_Coarse] = []
    for run_no, scan in enumerate(scans):
        frames = rec._runs[run_no].frames
        ok = (scan.win_db >= threshold_db) & np.isfinite(scan.freq) & (scan.purity >= MIN_PURITY)
        idx = np.flatnonzero(ok)
        groups: list[list] = []  # [first window, last window, freqs]
        for i in idx.tolist():
            f = scan.freq[i]
            last = groups[-1] if groups else None
            if last and last[1] == i - 1 and abs(f - last[2][0]) <= tolerance:
                last[1] = i
                last[2].append(f)
            else:
                groups.append([i, i, [f]])
        for first, last, freqs in groups:
            freq = float(freqs[0]) if expected else float(np.median(freqs))
            found.append(_Coarse(run_no, first * w, min((last + 1) * w, frames), freq))
    return found


def _prefix(basis: np.ndarray, other: np.ndarray | None, x: np.ndarray):
    """Prefix sums (with a leading zero) of basis·basisᵀ, basis·otherᵀ and basis·x over samples."""
    def cum(a: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(a, axis=0)])

    bt = basis.T  # (n, 4)
    gram = cum(bt[:, :, None] * bt[:, None, :])
    cross = cum(bt[:, :, None] * other.T[:, None, :]) if other is not None else None
    proj = cum(bt * x[:, None])
    return gram, cross, proj


def _explained(gram: np.ndarray, proj: np.ndarray, ridge: float) -> np.ndarray:
    size = gram.shape[-1]
    theta = np.linalg.solve(gram + np.eye(size) * ridge, proj[..., None])[..., 0]
    return np.einsum("...i,...i->...", proj, theta)


def _refine(rec: Recording, run: int, lo: int, hi: int, fa: float | None, fb: float | None, *,
            overlap: bool = True) -> tuple[int, int]:
    """Split frames [lo, hi) into tone A (until e), nothing, tone B (from s): returns (e, s).

    Least squares with linear envelopes; s < e (both at once) is kept only when it explains
    clearly more. A missing tone (None) is absent from the model.
    """
    x = rec.read(run, lo, hi).mean(axis=1, dtype=np.float64)
    size = len(x)
    n = np.arange(size, dtype=np.float64)
    zero = np.zeros(size + 1)
    ba = _basis(fa, n, size, rec.rate) if fa is not None else None
    bb = _basis(fb, n, size, rec.rate) if fb is not None else None
    ridge = 1e-7 * size
    if ba is not None:
        ga, gab, pa = _prefix(ba, bb, x)
        expl_a = _explained(ga, pa, ridge)
    else:
        expl_a = zero
    if bb is not None:
        gb, _, pb = _prefix(bb, None, x)
        gb_suffix, pb_suffix = gb[-1] - gb, pb[-1] - pb  # fit on [s, size)
        expl_b = _explained(gb_suffix, pb_suffix, ridge)
    else:
        expl_b = zero
    # A until e, B from s >= e: for every s the best e <= s.
    running = np.maximum.accumulate(expl_a)
    is_new = np.concatenate([[True], expl_a[1:] > running[:-1]])
    best_e = np.maximum.accumulate(np.where(is_new, np.arange(size + 1), 0))
    total = running + expl_b
    s = int(np.argmax(total))
    e = int(best_e[s])
    if fa is None:
        return lo, lo + s
    if fb is None:
        return lo + e, hi
    if overlap:
        power = np.concatenate([[0.0], np.cumsum(x * x)])
        e, s = _refine_overlap(ga, gb, gab, pa, pb, expl_a, expl_b, power, ridge, e, s)
    return lo + e, lo + s


def _refine_overlap(ga, gb, gab, pa, pb, expl_a, expl_b, power, ridge, e0: int, s0: int) -> tuple[int, int]:
    """Try a crossfade: A alone until s, A and B together (each with its own linear envelope)
    on [s, e), B alone from e. Kept if it explains clearly more than the join (e0, s0) and the
    overlap is not much quieter than the tones (codec smear in a short gap is not a crossfade)."""
    size = len(ga) - 1
    gap_explained = float(expl_a[e0] + expl_b[s0])

    def best(s_range: np.ndarray, e_range: np.ndarray) -> tuple[int, int, float]:
        ss, es = np.meshgrid(s_range, e_range, indexing="ij")
        keep = ss < es
        ss, es = ss[keep], es[keep]
        if not len(ss):
            return -1, -1, -math.inf
        gram = np.zeros((len(ss), 8, 8))
        gram[:, :4, :4] = ga[es] - ga[ss]
        gram[:, 4:, 4:] = gb[es] - gb[ss]
        cross = gab[es] - gab[ss]
        gram[:, :4, 4:] = cross
        gram[:, 4:, :4] = cross.transpose(0, 2, 1)
        proj = np.concatenate([pa[es] - pa[ss], pb[es] - pb[ss]], axis=1)
        values = expl_a[ss] + _explained(gram, proj, ridge) + expl_b[es]
        i = int(np.argmax(values))
        return int(es[i]), int(ss[i]), float(values[i])

    step = max(1, math.ceil(size / 48))
    grid = np.unique(np.concatenate([np.arange(0, size + 1, step), [size]]))
    e, s, value = best(grid, grid)
    while step > 1 and value > -math.inf:
        fine = max(1, step // 8)
        e_range = np.arange(max(0, e - step), min(size, e + step) + 1, fine)
        s_range = np.arange(max(0, s - step), min(size, s + step) + 1, fine)
        e2, s2, value2 = best(s_range, e_range)
        if value2 >= value:
            e, s, value = e2, s2, value2
        step = fine
    if value == -math.inf or e - s < 2:
        return e0, s0
    unexplained = max(float(power[-1]) - gap_explained, 0.0)
    loud = min(power[s] / s if s else math.inf, (power[-1] - power[e]) / (size - e) if e < size else math.inf)
    if value - gap_explained > OVERLAP_GAIN * unexplained and (power[e] - power[s]) / (e - s) >= \
            OVERLAP_MIN_POWER * loud:
        return e, s
    return e0, s0


def segments(rec: Recording, *, window_ms: float = 20.0, expected_freqs: Sequence[float] | None = None,
             threshold_dbfs: float = -50.0, snap_tolerance_hz: float | None = None,
             refine: bool = True) -> list[Segment]:
    """Stretches of one tone each, edges refined to the sample.

    Each window of `window_ms` gets its dominant frequency, snapped to the nearest of
    `expected_freqs` when given (within `snap_tolerance_hz`, by default half the smallest
    spacing); silent, mixed and unknown windows belong to no segment.
    """
    expected = tuple(sorted(float(f) for f in expected_freqs)) if expected_freqs else None
    if snap_tolerance_hz is None:
        if expected and len(expected) > 1:
            snap_tolerance_hz = 0.5 * float(np.min(np.diff(expected)))
        else:
            snap_tolerance_hz = 0.05 * expected[0] if expected else 0.0
    scans = _scan(rec, window_ms=window_ms, expected=expected, snap_tolerance=snap_tolerance_hz,
                  floor_db=min(threshold_dbfs, -60.0))
    w = max(16, round(rec.rate * window_ms / 1000))
    merge_tolerance = 0.0 if expected else max(2.0, 0.02 * 1000 / window_ms)
    coarse = _coarse_segments(rec, scans, w, threshold_dbfs, expected is not None, merge_tolerance)
    starts = [c.i0 for c in coarse]
    ends = [c.i1 for c in coarse]
    if refine:
        margin = w + round(0.010 * rec.rate)
        join_max = round(JOIN_MAX_S * rec.rate)
        for i, seg in enumerate(coarse):
            run_frames = rec._runs[seg.run].frames
            nxt = coarse[i + 1] if i + 1 < len(coarse) and coarse[i + 1].run == seg.run else None
            prv = coarse[i - 1] if i > 0 and coarse[i - 1].run == seg.run else None
            if prv is None:  # its start has no tone before it
                lo = max(0, seg.i0 - margin)
                _e, starts[i] = _refine(rec, seg.run, lo, min(seg.i1, seg.i0 + margin), None, seg.freq)
            if nxt is not None and nxt.i0 - seg.i1 <= join_max:
                lo, hi = max(seg.i0, seg.i1 - margin), min(nxt.i1, nxt.i0 + margin)
                ends[i], starts[i + 1] = _refine(rec, seg.run, lo, hi, seg.freq, nxt.freq)
            else:
                hi = min(nxt.i0 if nxt else run_frames, seg.i1 + margin)
                ends[i], _s = _refine(rec, seg.run, max(seg.i0, seg.i1 - margin), hi, seg.freq, None)
                if nxt is not None:
                    lo = max(seg.i1, nxt.i0 - margin)
                    _e, starts[i + 1] = _refine(rec, seg.run, lo, min(nxt.i1, nxt.i0 + margin), None, nxt.freq)
    result = []
    for seg, s, e in zip(coarse, starts, ends, strict=True):
        if e <= s:
            s, e = seg.i0, seg.i1
        result.append(Segment(seg.freq, rec.time_of(seg.run, s), rec.time_of(seg.run, e)))
    return result


def boundaries(segs: Sequence[Segment], *, min_change_hz: float = 5.0) -> list[Boundary]:
    """One per change of tone between consecutive segments."""
    ordered = sorted(segs, key=lambda s: s.start_mono)
    found = []
    for prev, nxt in zip(ordered, ordered[1:], strict=False):
        if abs(nxt.freq_hz - prev.freq_hz) > min_change_hz:
            found.append(Boundary(prev.freq_hz, nxt.freq_hz, nxt.start_mono,
                                  (nxt.start_mono - prev.end_mono) * 1000))
    return found


# --- summary ---------------------------------------------------------------------------------------

def summary(rec: Recording, *, expected_freqs: Sequence[float] | None = None, threshold_dbfs: float = -50.0,
            min_silence_ms: float = 20.0, window_ms: float = 20.0, boundary_limit_ms: float = 20.0) -> dict:
    """The figures a soak test or benchmark reports (JSON-serialisable)."""
    segs = segments(rec, window_ms=window_ms, expected_freqs=expected_freqs, threshold_dbfs=threshold_dbfs)
    found = silences(rec, threshold_dbfs=threshold_dbfs, min_ms=min_silence_ms)
    joins = boundaries(segs)
    lengths = np.array([s.seconds for s in found])
    gaps = np.array([b.gap_ms for b in joins])
    start, end = rec.start_mono, rec.end_mono

    def wall(mono: float | None) -> str | None:
        return to_datetime(rec, mono).isoformat() if mono is not None else None

    return {
        "files": len(rec.files),
        "blocks": int(len(rec.blocks)),
        "partial_tail_bytes": sum(f.tail_bytes for f in rec.files),
        "clock_spread_ms": round(clock_spread_ms(rec), 3),
        "start_wall": wall(start),
        "end_wall": wall(end),
        "span_seconds": round(end - start, 6) if start is not None else 0.0,
        "heard_seconds": round(rec.heard_seconds, 6),
        "writer_gaps": len(rec.gaps),
        "overlaps": len(rec.overlaps),
        "overlap_seconds": round(float(sum(o.seconds for o in rec.overlaps)), 6),
        "silence_threshold_dbfs": threshold_dbfs,
        "silences": len(found),
        "silences_over_0_5s": int((lengths > 0.5).sum()),
        "silence_seconds": round(float(lengths.sum()), 6),
        "max_silence_seconds": round(float(lengths.max()), 6) if len(lengths) else 0.0,
        "p99_silence_seconds": round(float(np.percentile(lengths, 99)), 6) if len(lengths) else 0.0,
        "segments": len(segs),
        "boundaries": len(joins),
        "max_boundary_gap_ms": round(float(gaps.max()), 3) if len(gaps) else 0.0,
        "min_boundary_gap_ms": round(float(gaps.min()), 3) if len(gaps) else 0.0,
        "p99_abs_boundary_gap_ms": round(float(np.percentile(np.abs(gaps), 99)), 3) if len(gaps) else 0.0,
        "boundaries_over_limit": int((np.abs(gaps) > boundary_limit_ms).sum()),
        "boundary_limit_ms": boundary_limit_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playback.aircheck",
                                     description="Summarise air-check recordings (JSON on stdout).")
    parser.add_argument("paths", nargs="+", help="recording files or folders")
    parser.add_argument("--expected", default="", help="comma-separated tone frequencies (Hz)")
    parser.add_argument("--threshold", type=float, default=-50.0, help="silence threshold, dBFS")
    parser.add_argument("--list", action="store_true", help="also list silences, segments, boundaries")
    args = parser.parse_args(argv)
    expected = [float(f) for f in args.expected.split(",") if f.strip()] or None
    with load(args.paths) as rec:
        report: dict = summary(rec, expected_freqs=expected, threshold_dbfs=args.threshold)
        if args.list:
            segs = segments(rec, expected_freqs=expected, threshold_dbfs=args.threshold)
            report["silence_list"] = [vars(s) for s in silences(rec, threshold_dbfs=args.threshold)]
            report["segment_list"] = [vars(s) for s in segs]
            report["boundary_list"] = [vars(b) for b in boundaries(segs)]
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
