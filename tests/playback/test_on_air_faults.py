"""The playback worker as a process, faults injected the way they happen, measured at the output.

The worker records what leaves its output (PLAYBACK_RECORD_DIR: every sample with
the instant it is heard, playback/output.py); the checks read that recording, not
the player's state. PostgreSQL and Redis are reached through a TcpProxy that can
blackhole the path: connections stay open and nothing answers (FACTS.md: no
driver time-out covers that).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.test import Client

from library.models import Track
from library.services import track_analyse, track_import_file
from playback import aircheck, services
from playback.models import PlayerCommand, PlayerState, PlayLog
from radio.models import Notification
from tests.library.audio import make_tone
from tests.playback.test_playback_worker import wait_for
from tests.servers import TcpProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TRACK_SECONDS = 2.0


@pytest.fixture
def queue_tones(station, tmp_path):
    station.queue_min_depth = 0
    station.save()

    def make(count: int, seconds: float = TRACK_SECONDS) -> list[Track]:
        tracks = []
        for n in range(count):
            path = make_tone(tmp_path / f"tone{n}.mp3", seconds=seconds, freq=300 + 40 * (n % 20),
                             title=f"Tone {n}", artist=f"Artist {n}")
            track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                      original_name=f"tone{n}.mp3")
            track = track_analyse(track=track)
            services.queue_append(station=station, track=track)
            tracks.append(track)
        return tracks

    return make


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def _heard(folder: Path) -> aircheck.Recording:
    return aircheck.load(folder)


def _max_gap_between(rec: aircheck.Recording, start: float, end: float) -> float:
    """The longest stretch without audio between two monotonic instants (s)."""
    gaps = [s for s in aircheck.silences(rec, min_ms=5.0) if s.end_mono > start and s.start_mono < end]
    return max((min(s.end_mono, end) - max(s.start_mono, start) for s in gaps), default=0.0)


def _stop(worker) -> str:
    """Stop the worker; its log, for the failure message."""
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=10)
    log = worker.read_err()
    Path("/tmp/onair-last-worker.log").write_text(log)
    return log[-6000:]


def test_track_changes_keep_time_while_postgresql_stops_answering(station, queue_tones, spawn, process_env,
                                                                  tmp_path):
    proxy = TcpProxy(urlsplit(process_env["DATABASE_URL"]).port)
    record = tmp_path / "heard"
    process_env.update(DATABASE_URL=_via(process_env["DATABASE_URL"], proxy.port),
                       PLAYBACK_RECORD_DIR=str(record), PLAYBACK_DB_DEADLINE="4")
    queue_tones(30)
    worker = spawn("playback_worker", "--station", station.slug, "--output", "dummy")
    try:
        wait_for(lambda: PlayLog.objects.filter(station=station).count() >= 2, timeout=30)
        proxy.blackhole()  # the database path goes silent, nothing is closed
        silent_from = time.monotonic()
        time.sleep(30)
        proxy.restore()
        silent_to = time.monotonic()
        # The rows of everything that aired meanwhile arrive once the database answers.
        wait_for(lambda: PlayLog.objects.filter(station=station).count() >= 18, timeout=40)
        assert worker.poll() is None
    finally:
        log = _stop(worker)
        proxy.close()
    rec = _heard(record)
    assert _max_gap_between(rec, silent_from - 2, silent_to) < 0.1, (aircheck.summary(rec), log)
    rows = list(PlayLog.objects.filter(station=station).order_by("started_at"))
    during = [r for r in rows if aircheck.to_datetime(rec, silent_from) <= r.started_at
              <= aircheck.to_datetime(rec, silent_to)]
    assert len(during) >= 13  # ~15 two-second tracks started while nothing answered
    assert {r.outcome for r in during} == {PlayLog.Outcome.COMPLETED}
    for row in during:
        assert abs(row.played_seconds - TRACK_SECONDS) < 0.3


def test_track_changes_keep_time_while_redis_stops_answering(station, queue_tones, spawn, process_env,
                                                             tmp_path):
    proxy = TcpProxy(urlsplit(process_env["REDIS_URL"]).port)
    record = tmp_path / "heard"
    process_env.update(REDIS_URL=_via(process_env["REDIS_URL"], proxy.port), PLAYBACK_RECORD_DIR=str(record))
    queue_tones(25)
    worker = spawn("playback_worker", "--station", station.slug, "--output", "dummy")
    try:
        wait_for(lambda: PlayLog.objects.filter(station=station).count() >= 2, timeout=30)
        proxy.blackhole()
        silent_from = time.monotonic()
        # Commands still work: the database is the source of truth, the worker polls it.
        command = services.command_issue(station=station, action="volume", args={"volume": 80})
        wait_for(lambda: PlayerCommand.objects.get(pk=command.pk).status == PlayerCommand.Status.DONE,
                 timeout=10)
        time.sleep(30 - (time.monotonic() - silent_from))
        proxy.restore()
        silent_to = time.monotonic()
        wait_for(lambda: PlayerState.objects.get(station=station).volume == 80, timeout=10)
        assert worker.poll() is None
    finally:
        log = _stop(worker)
        proxy.close()
    rec = _heard(record)
    assert _max_gap_between(rec, silent_from - 2, silent_to) < 0.1, (aircheck.summary(rec), log)
    started = [r.started_at for r in PlayLog.objects.filter(station=station).order_by("started_at")]
    assert sum(aircheck.to_datetime(rec, silent_from) <= s <= aircheck.to_datetime(rec, silent_to)
               for s in started) >= 13


def test_dead_air_turns_healthz_503_and_says_why(station, spawn, process_env, tmp_path):
    station.silence_alert_seconds = 2
    station.queue_min_depth = 0
    station.save()
    process_env["PLAYBACK_RECORD_DIR"] = str(tmp_path / "heard")
    worker = spawn("playback_worker", "--station", station.slug, "--output", "dummy")
    try:
        started = time.monotonic()
        client = Client()

        def dead_air_reported():
            response = client.get("/healthz")
            state = response.json()["checks"]["playback"].get(station.slug, {})
            return response.status_code == 503 and "dead air" in state.get("detail", "") and state

        state = wait_for(dead_air_reported, timeout=15)
        assert time.monotonic() - started < 2 + 5  # the alert delay, the start-up, a heartbeat
        assert "no songs" in state["detail"].lower() or "song" in state["detail"].lower()
        alert = wait_for(lambda: Notification.objects.filter(station=station, source="playback").first())
        assert "Dead air" in alert.message
    finally:
        _stop(worker)


def test_a_log_reader_that_stops_reading_does_not_stop_the_broadcast(station, queue_tones, process_env,
                                                                    tmp_path):
    """stdout and stderr are a pipe that is never read (a stalled supervisor or journal), shrunk to
    one page so that it fills within a few tracks: the worker's log lines must not block on it."""
    import fcntl
    import os
    import subprocess
    import sys
    import termios

    from tests.fixtures import ROOT

    record = tmp_path / "heard"
    process_env.update(PLAYBACK_RECORD_DIR=str(record), LOG_LEVEL="DEBUG")
    queue_tones(24, seconds=1.0)
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    worker = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "playback_worker", "--station",
                               station.slug, "--output", "dummy"], env=process_env, cwd=ROOT,
                              stdout=write_end, stderr=write_end)
    os.close(write_end)
    try:
        wait_for(lambda: PlayLog.objects.filter(station=station).count() >= 22, timeout=60)
        assert worker.poll() is None
        waiting = fcntl.ioctl(read_end, termios.FIONREAD, b"\0\0\0\0")
        # The pipe filled (a line longer than the room left blocks its writer): nothing read it.
        assert int.from_bytes(waiting, "little") >= 3500
    finally:
        worker.kill()
        worker.wait(timeout=10)
        os.close(read_end)
    rec = _heard(record)
    due = rec.blocks["due_us"] / 1e6
    assert due[-1] - due[0] > 21.0, aircheck.summary(rec)  # 22 one-second tones or more were heard
    assert _max_gap_between(rec, due[0], due[-1]) < 0.1, aircheck.summary(rec)


def test_a_hard_start_keeps_its_instant_while_postgresql_stops_answering(station, queue_tones, spawn,
                                                                         process_env, tmp_path):
    """The programme is held in memory: a start due while the database is silent is on time."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from scheduling.models import ContentKind, Mode, ProgramSlot

    proxy = TcpProxy(urlsplit(process_env["DATABASE_URL"]).port)
    record = tmp_path / "heard"
    process_env.update(DATABASE_URL=_via(process_env["DATABASE_URL"], proxy.port),
                       PLAYBACK_RECORD_DIR=str(record), PLAYBACK_DB_DEADLINE="4")
    queue_tones(30)
    path = make_tone(tmp_path / "news.mp3", seconds=3.0, freq=2600.0, title="News")
    news = track_analyse(track=track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                                 original_name="news.mp3", hints={"kind": "newsflash"}))
    at = (timezone.now() + timedelta(seconds=30)).replace(microsecond=0)
    local = at.astimezone(ZoneInfo(station.time_zone))
    ProgramSlot.objects.create(station=station, name="News", weekdays=[local.weekday()],
                               start_time=local.time(), end_time=(local + timedelta(seconds=10)).time(),
                               first_day=local.date(), last_day=local.date(), content_kind=ContentKind.TRACK,
                               track=news, mode=Mode.HARD)
    worker = spawn("playback_worker", "--station", station.slug, "--output", "dummy")
    try:
        wait_for(lambda: PlayLog.objects.filter(station=station).count() >= 2, timeout=30)
        assert (at - timezone.now()).total_seconds() > 12, "the worker took too long to start"
        proxy.blackhole()  # from here to well after the start, nothing answers
        while timezone.now() < at + timedelta(seconds=8):
            time.sleep(0.2)
        proxy.restore()
        wait_for(lambda: PlayLog.objects.filter(station=station, track=news).exists(), timeout=40)
        assert worker.poll() is None
    finally:
        log = _stop(worker)
        proxy.close()
    rec = _heard(record)
    starts = [s.start_mono for s in aircheck.segments(rec, expected_freqs=[300 + 40 * n for n in range(20)]
                                                       + [2600.0]) if abs(s.freq_hz - 2600.0) < 1]
    assert starts, (aircheck.summary(rec), log)
    error_ms = (aircheck.to_wall(rec, starts[0]) - at.timestamp()) * 1000
    assert abs(error_ms) <= 20, (error_ms, log)
    row = PlayLog.objects.get(station=station, track=news)
    assert row.reason == "schedule"
