"""Helpers for measuring what the station sounds like: label audio by tone, level and loudness."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np

from library.analysis import analyse_file
from playback.output import RATE


def label(samples: np.ndarray, freqs: tuple[float, ...]) -> float:
    """The nearest of `freqs` to the strongest tone in `samples` (frames × 2), or 0.0 when silent."""
    mono = samples[:, 0].astype(np.float64)
    if len(mono) == 0 or np.sqrt(np.mean(mono ** 2)) < 30:  # under about −60 dBFS
        return 0.0
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    peak = np.argmax(spectrum) * RATE / len(mono)
    return min(freqs, key=lambda f: abs(f - peak))


def windows(samples: np.ndarray, ms: float = 20.0) -> list[np.ndarray]:
    width = int(RATE * ms / 1000)
    return [samples[i:i + width] for i in range(0, len(samples) - width + 1, width)]


def rms_db(samples: np.ndarray) -> float:
    value = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) / 32768
    return 20 * np.log10(max(value, 1e-9))


def loudness_of(samples: np.ndarray, path: Path) -> float:
    """Integrated loudness (LUFS) by the library's own meter (ffmpeg's ebur128)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype(np.int16).tobytes())
    return analyse_file(path).loudness_lufs


class Capture:
    """An output like the Icecast encoder: every buffer as it is played out, and idle calls."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, np.ndarray]] = []
        self.lock = threading.Lock()

    def feed(self, at_us: int, pcm: bytes) -> None:
        with self.lock:
            self.blocks.append((at_us, np.frombuffer(pcm, dtype=np.int16).reshape(-1, 2).copy()))

    def idle(self, now_us: int) -> None:
        pass

    def by_freq(self, freqs: tuple[float, ...]) -> list[tuple[float, int, np.ndarray]]:
        """(freq, at_us, samples) per block, each block labelled with the nearest of `freqs` (or 0:
        silent)."""
        with self.lock:
            blocks = list(self.blocks)
        return [(label(samples, freqs), at, samples) for at, samples in blocks]


def tone_levels(samples: np.ndarray, freqs: tuple[float, ...], window_s: float = 0.02) -> np.ndarray:
    """dBFS of each tone in each window: (windows × freqs), by projection on the tone under a Hann
    window (the other tones, 220 Hz away, leak in at under −40 dB)."""
    width = int(RATE * window_s)
    x = samples[:len(samples) // width * width, 0].astype(np.float64).reshape(-1, width)
    hann = np.hanning(width)
    n = np.arange(width) / RATE
    out = []
    for f in freqs:
        z = np.abs((x * hann) @ np.exp(-2j * np.pi * f * n)) * 2 / hann.sum()
        out.append(20 * np.log10(np.maximum(z, 1e-3) / 32768))
    return np.array(out).T
