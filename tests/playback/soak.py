"""The station as users run it, under load, measured at the output: the soak harness.

Used by `tests/playback/test_soak.py` (a few minutes in the suite) and `bench/soak.py`
(an hour, with outages). `manage.py run_station` starts every process exactly as
`make run` does (supervisord included) on the given PostgreSQL and Redis; the
station's output records what a listener hears (PLAYBACK_RECORD_DIR); operators'
commands arrive through the REST API at random times; the playback worker is killed
with SIGKILL; then the recording is read back (playback.aircheck) and compared with
the as-run log. Needs Django set up against the same database.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASE_FREQ, FREQ_STEP = 300.0, 40.0


def tone_freq(n: int) -> float:
    return BASE_FREQ + FREQ_STEP * n


@dataclass
class Event:
    kind: str  # skip, pause, resume, play_now, append, move, remove, volume, kill, db_blackhole, …
    sent: float  # monotonic
    answered: float | None = None  # the command row left "pending" (or the HTTP answer, for queue edits)
    ok: bool = True
    detail: str = ""


@dataclass
class SoakRun:
    var_dir: Path
    port: int
    env: dict[str, str]
    events: list[Event] = field(default_factory=list)
    process: subprocess.Popen | None = None
    token: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def record_dir(self) -> Path:
        return self.var_dir / "heard"

    # --- the station -----------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_station"], env=self.env, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while self.health() != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the station did not come up:\n" + "".join(self.output[-80:]))
            time.sleep(0.5)
        self.token = self.api("POST", "/api/v1/auth/token",
                              {"username": "admin", "password": self.env["ONAIR_ADMIN_PASSWORD"]})[1]["token"]

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if len(self.output) > 5000:
                del self.output[:1000]

    def stop(self) -> int:
        """Ctrl-C, as in the terminal: everything stops."""
        if self.process is None:
            return 0
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return -9

    def health(self) -> int | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=3) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> tuple[int, Any]:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, raw.decode(errors="replace")

    def playback_pid(self) -> int | None:
        from radio.models import WorkerHeartbeat

        beat = WorkerHeartbeat.objects.filter(key="playback:main").exclude(owner="").first()
        return int(beat.owner.split(":")[1]) if beat else None

    # --- operators ---------------------------------------------------------------------

    def command(self, kind: str, path: str, body: dict | None = None) -> Event:
        """POST a transport command; answered when its row leaves pending (the worker applied it)."""
        from playback.models import PlayerCommand

        event = Event(kind, time.monotonic())
        self.events.append(event)
        try:
            status, data = self.api("POST", f"/api/v1/stations/main/player/{path}", body or {})
        except OSError as exc:
            event.ok, event.detail = False, f"no answer: {exc}"
            return event
        if status != 202:
            event.ok, event.detail = False, f"HTTP {status}: {data}"
            return event
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            row = PlayerCommand.objects.filter(pk=data["command"]).values("status", "result").first()
            if row and row["status"] != PlayerCommand.Status.PENDING:
                event.answered = time.monotonic()
                event.ok = row["status"] == PlayerCommand.Status.DONE
                event.detail = row["result"]
                return event
            time.sleep(0.02)
        event.ok, event.detail = False, "not applied within 15 s"
        return event

    def queue_edit(self, kind: str, method: str, path: str, body: dict | None = None) -> Event:
        event = Event(kind, time.monotonic())
        self.events.append(event)
        try:
            status, data = self.api(method, f"/api/v1/stations/main/queue{path}", body)
        except OSError as exc:
            event.ok, event.detail = False, f"no answer: {exc}"
            return event
        event.answered = time.monotonic()
        event.ok, event.detail = status < 300, f"HTTP {status}"
        return event

    def random_operator_action(self, rng: random.Random, track_ids: list[int]) -> Event | None:
        choice = rng.choice(["skip", "pause", "play_now", "append", "move", "remove", "volume"])
        if choice == "skip":
            return self.command("skip", "skip")
        if choice == "pause":
            event = self.command("pause", "pause")
            time.sleep(rng.uniform(1.0, 3.0))
            self.command("resume", "resume")
            return event
        if choice == "play_now":
            return self.command("play_now", "play-now", {"track": rng.choice(track_ids)})
        if choice == "volume":
            return self.command("volume", "volume", {"volume": rng.randint(60, 100)})
        if choice == "append":
            return self.queue_edit("append", "POST", "", {"track": rng.choice(track_ids), "at": "end"})
        status, items = self.api("GET", "/api/v1/stations/main/queue")
        queued = [i for i in (items or []) if isinstance(i, dict) and i.get("status") == "queued"]
        if status != 200 or len(queued) < 2:
            return self.queue_edit("append", "POST", "", {"track": rng.choice(track_ids), "at": "end"})
        item = rng.choice(queued)
        if choice == "move":
            to_index = rng.randint(0, len(queued) - 1)
            return self.queue_edit("move", "PATCH", f"/{item['id']}", {"to_index": to_index})
        return self.queue_edit("remove", "DELETE", f"/{item['id']}")

    def kill_playback(self) -> Event:
        event = Event("kill", time.monotonic())
        pid = self.playback_pid()
        if pid is None:
            event.ok, event.detail = False, "no playback worker holds the lease"
        else:
            os.kill(pid, signal.SIGKILL)
            event.detail = f"pid {pid}"
        self.events.append(event)
        return event


# --- setting up the library --------------------------------------------------------------

def make_library(folder: Path, count: int, *, seconds: Callable[[int], float]) -> list[int]:
    """`count` tone songs (one frequency each, distinct artists) imported and analysed."""
    from library.models import Track
    from library.services import track_analyse, track_import_file
    from tests.library.audio import make_tone

    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for n in range(count):
        path = make_tone(folder / f"tone{n:02d}.mp3", seconds=seconds(n), freq=tone_freq(n), level_db=-12.0,
                         title=f"Tone {n:02d}", artist=f"Artist {n:02d}")
        track = track_import_file(station=_station(), path=path, source=Track.Source.UPLOAD,
                                  original_name=path.name)
        ids.append(track_analyse(track=track).pk)
    return ids


def _station():
    from radio.services import station_ensure_default

    return station_ensure_default()


def configure_station(*, queue_depth: int = 3, silence_alert: int = 5) -> None:
    station = _station()
    station.queue_min_depth = queue_depth
    station.silence_alert_seconds = silence_alert
    station.output = "dummy"
    station.save()


# --- what was heard ------------------------------------------------------------------------

@dataclass
class Heard:
    freq_hz: float
    start_mono: float
    end_mono: float
    seconds: float


@dataclass
class Verdict:
    figures: dict[str, Any]
    problems: list[str]


def _in_windows(start: float, end: float, windows: list[tuple[float, float]]) -> bool:
    return any(start < w_end and end > w_start for w_start, w_end in windows)


def judge(run: SoakRun, track_ids: list[int], *, started: float, ended: float,
          excused: list[tuple[float, float, str]] = (), max_silence: float = 0.5,
          max_boundary_ms: float = 20.0, max_restart: float = 5.0, asrun_tolerance: float = 0.5) -> Verdict:
    """Read the recording back and hold it against the rules; `excused`: outage windows (start, end, why)."""
    from playback import aircheck
    from playback.models import PlayLog

    freqs = {tone_freq(n): track_id for n, track_id in enumerate(track_ids)}
    rec = aircheck.load(run.record_dir)
    problems: list[str] = []
    pauses = []
    for event in run.events:
        if event.kind == "pause":
            resume = next((e for e in run.events if e.kind == "resume" and e.sent >= event.sent), None)
            pauses.append((event.sent, (resume.answered or resume.sent) + 0.5 if resume else ended))
    kills = [e for e in run.events if e.kind == "kill"]
    restart_windows = [(k.sent, k.sent + max_restart) for k in kills]
    outage_windows = [(a, b) for a, b, _ in excused]
    operator = [(e.sent, (e.answered or e.sent) + 1.0) for e in run.events
                if e.kind in ("skip", "play_now", "pause", "resume")]
    silences = [s for s in aircheck.silences(rec) if s.end_mono > started + 5 and s.start_mono < ended]
    unexcused = [s for s in silences if not _in_windows(s.start_mono, s.end_mono, pauses + restart_windows)]
    long_silences = [s for s in unexcused if s.seconds > max_silence]
    for s in long_silences:
        where = "during an outage" if _in_windows(s.start_mono, s.end_mono, outage_windows) else ""
        problems.append(f"{s.seconds:.3f} s of silence at +{s.start_mono - started:.1f} s {where}".strip())
    restarts = []
    for kill in kills:
        after = [s for s in silences if s.end_mono > kill.sent and s.start_mono < kill.sent + 30]
        gap = max((s.end_mono - max(s.start_mono, kill.sent) for s in after), default=0.0)
        restarts.append(round(gap, 3))
        if gap > max_restart:
            problems.append(f"back on air {gap:.1f} s after kill -9 (limit {max_restart} s)")
    # What was heard, item by item: one tone per song; a song heard in parts (a pause, a glitch)
    # is one item; slivers under 0.1 s (the edge of a restart) are not items.
    heard: list[Heard] = []
    for seg in aircheck.segments(rec, expected_freqs=list(freqs)):
        if seg.seconds < 0.1:
            continue
        last = heard[-1] if heard else None
        gap = seg.start_mono - last.end_mono if last else None
        if last and last.freq_hz == seg.freq_hz and (gap < 0.6 or (gap < 10.0 and _in_windows(
                last.end_mono - 0.5, seg.start_mono + 0.5, pauses))):
            last.end_mono, last.seconds = seg.end_mono, last.seconds + seg.seconds
        else:
            heard.append(Heard(seg.freq_hz, seg.start_mono, seg.end_mono, seg.seconds))
    heard = [h for h in heard if h.end_mono > started and h.start_mono < ended]
    excused_joins = operator + restart_windows + pauses
    joins = [(a, b) for a, b in zip(heard, heard[1:], strict=False)]
    natural_gaps, operator_gaps, resumed_gaps = [], [], []
    for before, after in joins:
        gap_ms = (after.start_mono - before.end_mono) * 1000
        if _in_windows(before.end_mono - 1.0, after.start_mono + 1.0, excused_joins):
            operator_gaps.append(gap_ms)
            continue
        if _in_windows(before.start_mono, before.end_mono, pauses):
            # A paused item resumes as a new start from where it was heard (engine.resume_by_restart);
            # its end join is measured apart: ~24 ms seen, VLC's seek into an MP3.
            resumed_gaps.append(gap_ms)
            continue
        natural_gaps.append(abs(gap_ms))
        if abs(gap_ms) > max_boundary_ms:
            problems.append(f"track boundary at +{after.start_mono - started:.1f} s: {gap_ms:.1f} ms")

    # The as-run log against the recording: every completed row's start, end and length are heard.
    first, last = aircheck.to_datetime(rec, started) - timedelta(seconds=1), aircheck.to_datetime(rec, ended)
    rows = list(PlayLog.objects.filter(started_at__gte=first, started_at__lte=last).order_by("started_at"))
    by_track: dict[int | None, list[Heard]] = {}
    for item in heard:
        by_track.setdefault(freqs.get(item.freq_hz), []).append(item)
    asrun_errors = []
    killed_errors = []
    repeated = {row.uid for a, b in zip(rows, rows[1:], strict=False) if a.track_id == b.track_id
                for row in (a, b)}  # the same song twice in a row (a play-now of it): one tone, no edge
    for row in rows:
        if row.uid in repeated:
            continue
        if row.failure_reason == "playback worker restarted":  # on air at the kill -9
            start = aircheck.from_wall(rec, row.started_at)
            item = min(by_track.get(row.track_id, []), key=lambda s: abs(s.start_mono - start), default=None)
            if item is None or abs(item.start_mono - start) > 5:
                problems.append(f"the item on air at the kill ({row.title}) not heard near {row.started_at}")
                continue
            killed_errors.append(abs(item.seconds - row.played_seconds))
            if killed_errors[-1] > asrun_tolerance:
                problems.append(f"the item on air at the kill ({row.title}): logged "
                                f"{row.played_seconds:.2f} s played, {item.seconds:.2f} s heard")
            continue
        if row.outcome != PlayLog.Outcome.COMPLETED:
            continue
        start = aircheck.from_wall(rec, row.started_at)
        end = aircheck.from_wall(rec, row.ended_at)
        candidates = by_track.get(row.track_id, [])
        seg = min(candidates, key=lambda s: abs(s.start_mono - start), default=None)
        if seg is None or abs(seg.start_mono - start) > 5:
            problems.append(f"as-run row {row.uid} ({row.title}) not heard near {row.started_at}")
            continue
        if _in_windows(seg.start_mono - 0.5, seg.end_mono + 0.5, excused_joins):
            continue  # paused, cut by a play-now or a restart: its edges are the operator's
        error = max(abs(seg.start_mono - start), abs(seg.end_mono - end),
                    abs(seg.seconds - row.played_seconds))
        asrun_errors.append(error)
        if error > asrun_tolerance:
            problems.append(f"as-run row {row.title} at {row.started_at:%H:%M:%S} off by {error:.2f} s "
                            f"(heard {seg.seconds:.2f} s from +{seg.start_mono - started:.1f} s, "
                            f"logged {row.played_seconds:.2f} s)")
    answered = [e for e in run.events if e.kind not in ("kill",) and e.answered is not None]
    latencies = sorted(e.answered - e.sent for e in answered)
    gaps_sorted = sorted(s.seconds for s in unexcused) or [0.0]
    figures = {
        "minutes": round((ended - started) / 60, 2),
        "heard_seconds": round(rec.heard_seconds, 1),
        "transitions": len(joins),
        "natural_transitions": len(natural_gaps),
        "max_natural_boundary_gap_ms": round(max(natural_gaps, default=0.0), 2),
        "max_operator_boundary_gap_ms": round(max(operator_gaps, default=0.0), 2),
        "max_boundary_gap_after_resume_ms": round(max(resumed_gaps, default=0.0), 2),
        "silences_over_0_5s": len(long_silences),
        "max_silence_s": round(gaps_sorted[-1], 3),
        "p99_silence_s": round(gaps_sorted[int(0.99 * (len(gaps_sorted) - 1))], 3),
        "restarts": len(kills),
        "restart_silence_s": restarts,
        "commands_sent": sum(1 for e in run.events if e.kind != "kill"),
        "commands_answered": len(answered),
        "commands_failed": [f"{e.kind}: {e.detail}" for e in run.events if not e.ok and e.kind != "kill"][:20],
        "command_latency_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "command_latency_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1)
        if latencies else None,
        "asrun_rows_checked": len(asrun_errors),
        "asrun_max_error_s": round(max(asrun_errors, default=0.0), 3),
        "killed_item_played_error_s": [round(e, 3) for e in killed_errors],
        "outages": [why for _, _, why in excused],
    }
    return Verdict(figures, problems)
