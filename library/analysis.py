"""Decoded length, loudness, true peak and cue points of an audio file, measured by ffmpeg.

One decode pass: `ebur128` (integrated loudness, true peak) and `silencedetect`
(leading and trailing silence) share a filter chain, and `-progress` reports how
much audio was decoded. A file ffmpeg cannot decode, that holds corrupt frames,
or that has nothing to hear is Unplayable, with a reason a person can act on.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

SILENCE_DB = -50.0
SILENCE_MIN_SECONDS = 0.3
MIN_AUDIO_SECONDS = 0.1
# Below analyse_track's 300-s soft limit, so a stuck decode ends here, with a reason.
TIMEOUT_SECONDS = 240.0
# A silence that starts or ends this close to an edge of the file touches it.
EDGE_SECONDS = 0.05
# Decode errors that mean frames were lost: the file would glitch on air.
CORRUPTION_MARKERS = ("Invalid data found when processing input", "Error while decoding")

_LOG_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)+")  # "[mp3float @ 0x…] [error] "
_LEVEL = re.compile(r"\[(error|fatal)\]\s")
_SILENCE_START = re.compile(r"silence_start:\s*(-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end:\s*(-?[\d.]+)")
# float() reads ebur128's "-inf" as well.
_LOUDNESS = re.compile(r"^\s*I:\s+(-?(?:[\d.]+|inf))\s+LUFS", re.MULTILINE)
_TRUE_PEAK = re.compile(r"^\s*Peak:\s+(-?(?:[\d.]+|inf))\s+dBFS", re.MULTILINE)
_OUT_TIME_US = re.compile(r"^out_time_us=(\d+)\s*$", re.MULTILINE)
_STATS_TIME = re.compile(r"time=(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")


class Unplayable(Exception):
    """The file cannot go on air; str() is the reason."""


@dataclass(frozen=True)
class AnalysisResult:
    duration: float
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    cue_in: float
    cue_out: float


@dataclass
class FfmpegReport:
    """What ffmpeg said about one decode pass."""

    duration: float | None = None
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    silences: list[tuple[float, float | None]] = field(default_factory=list)  # (start, end)
    errors: list[str] = field(default_factory=list)


def ffmpeg_binary() -> str:
    """settings.FFMPEG_BINARY, else ffmpeg on PATH, else the imageio-ffmpeg wheel's static build."""
    configured = getattr(settings, "FFMPEG_BINARY", "")
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_command(path: Path) -> list[str]:
    chain = (f"ebur128=peak=true:framelog=verbose,"
             f"silencedetect=noise={SILENCE_DB:g}dB:d={SILENCE_MIN_SECONDS:g}")
    return [ffmpeg_binary(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
            "-progress", "pipe:1", "-i", str(path), "-map", "0:a:0", "-af", chain, "-f", "null", "-"]


def _message(line: str) -> str:
    return _LOG_PREFIX.sub("", line).strip().rstrip(".")


def parse_report(stdout: str, stderr: str) -> FfmpegReport:
    report = FfmpegReport()
    for line in stderr.splitlines():
        if _LEVEL.search(line):
            report.errors.append(_message(line))
        if match := _SILENCE_START.search(line):
            report.silences.append((float(match[1]), None))
        elif (match := _SILENCE_END.search(line)) and report.silences:
            report.silences[-1] = (report.silences[-1][0], float(match[1]))
    if matches := _LOUDNESS.findall(stderr):
        report.loudness_lufs = float(matches[-1])
    if matches := _TRUE_PEAK.findall(stderr):
        report.true_peak_dbtp = float(matches[-1])
    if matches := _OUT_TIME_US.findall(stdout):
        report.duration = int(matches[-1]) / 1_000_000
    elif matches := _STATS_TIME.findall(stderr):
        hours, minutes, seconds = matches[-1]
        report.duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return report


def _reason(errors: list[str], limit: int = 2) -> str:
    distinct = list(dict.fromkeys(errors))
    return "; ".join(distinct[:limit])


def _check_decoded(report: FfmpegReport, returncode: int) -> None:
    if returncode != 0:
        raise Unplayable(f"ffmpeg cannot decode it: {_reason(report.errors) or f'exit status {returncode}'}")
    corrupt = [e for e in report.errors if any(marker in e for marker in CORRUPTION_MARKERS)]
    if corrupt:
        raise Unplayable(f"corrupt audio data ({len(corrupt)} decode errors): {_reason(report.errors)}")
    if report.duration is None or report.duration < MIN_AUDIO_SECONDS:
        raise Unplayable(f"too short: {report.duration or 0.0:.2f} s of audio decoded")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def cue_points(silences: list[tuple[float, float | None]], duration: float) -> tuple[float, float]:
    """Cue in after a silence that starts the file, cue out where one that ends it begins."""
    silent = Unplayable(f"silent: no audio above {SILENCE_DB:g} dBFS")
    cue_in, cue_out = 0.0, duration
    for start, end in silences:
        end = duration if end is None else min(end, duration)
        at_start, at_end = start <= EDGE_SECONDS, end >= duration - EDGE_SECONDS
        if at_start and at_end:
            raise silent
        if at_start:
            cue_in = max(cue_in, end)
        elif at_end:
            cue_out = min(cue_out, max(start, 0.0))
    if cue_out <= cue_in:
        raise silent
    return round(cue_in, 3), round(cue_out, 3)


def result_from(report: FfmpegReport) -> AnalysisResult:
    duration = report.duration or 0.0
    peak = report.true_peak_dbtp
    if peak is not None and peak < SILENCE_DB:  # true peak ≥ every sample: all of it is quiet
        raise Unplayable(f"silent: no audio above {SILENCE_DB:g} dBFS")
    cue_in, cue_out = cue_points(report.silences, duration)
    return AnalysisResult(duration=round(duration, 3), loudness_lufs=_finite(report.loudness_lufs),
                          true_peak_dbtp=_finite(peak), cue_in=cue_in, cue_out=cue_out)


def analyse_file(path: Path, *, timeout: float = TIMEOUT_SECONDS) -> AnalysisResult:
    """Decode the whole file once and measure it. Raises Unplayable with the reason."""
    started = time.monotonic()
    try:
        completed = subprocess.run(ffmpeg_command(path), capture_output=True, text=True,
                                   errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        logger.warning("file=%s analysis timed out after %.0f s", path.name, timeout)
        raise Unplayable(f"analysis timed out after {timeout:g} s") from exc
    report = parse_report(completed.stdout, completed.stderr)
    try:
        _check_decoded(report, completed.returncode)
        result = result_from(report)
    except Unplayable as exc:
        logger.info("file=%s unplayable: %s", path.name, exc)
        raise
    logger.info("file=%s analysed in %.2f s: %s", path.name, time.monotonic() - started, result)
    return result
