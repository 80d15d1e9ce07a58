"""Schedule precision: hard and soft starts on the running station, measured on the output.

    uv run --frozen python bench/schedule_precision.py                 # both parts
    uv run --frozen python bench/schedule_precision.py --part calendar # the calendar sync only

**On air** (`--part onair`): a private PostgreSQL and Redis; `manage.py run_station` starts
every process as `make run` does; the station's output records what a listener hears
(PLAYBACK_RECORD_DIR). The library: songs of real length (2.5–5 min, a tone each), short
jingles (4–30 s) for back-timing, a newsflash (hard starts) and a show (soft starts), each a
tone of its own. The programme is written up front as one-day programme slots (Asia/Jerusalem):
`--soft` soft starts 3–6 min apart and `--hard` hard starts between them. Every other soft
start runs with the station's "fade to fit" on. An operator changes the volume, appends to the
queue and skips now and then through the REST API. Afterwards the recording is read back
(playback.aircheck): the error of a start is when its first sample was heard minus its
scheduled instant. Cuts come from the as-run log.

**Calendar** (`--part calendar`): the fake Google Calendar (tests/fakes) with `--events`
events, synced through the real Google client: a full sync, then 10 changes synced
incrementally; wall time and requests of each.

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ZONE = "Asia/Jerusalem"
NEWS_FREQ, SHOW_FREQ, JINGLE_BASE = 2600.0, 2800.0, 2000.0
JINGLE_SECONDS = (4, 6, 8, 11, 15, 20, 25, 30)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def stats(values: list[float], digits: int = 3) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": round(min(values), digits),
            "median": round(statistics.median(values), digits), "p95": round(pct(values, 0.95), digits),
            "p99": round(pct(values, 0.99), digits),
            "max": round(max(values), digits)}


# --- on air ----------------------------------------------------------------------------------------

def _programme(rng: random.Random, t0: datetime, soft: int, hard: int, gap: tuple[float, float],
               spacing: float = 45.0):
    """[(instant, "soft"|"hard")]: soft starts `gap` apart, hard starts spread between them."""
    softs, at = [], t0
    for _ in range(soft):
        at += timedelta(seconds=rng.uniform(*gap))
        softs.append(at)
    hards: list[datetime] = []
    span = (softs[-1] - t0).total_seconds()
    tries = 0
    while len(hards) < hard and tries < 100_000:
        tries += 1
        candidate = t0 + timedelta(seconds=rng.uniform(30, span - 30))
        near = [*softs, *hards]
        if all(abs((candidate - other).total_seconds()) >= spacing for other in near):
            hards.append(candidate)
    return sorted([(s, "soft") for s in softs] + [(h, "hard") for h in hards])


def _slot(station, at: datetime, kind: str, track, n: int):
    from scheduling.models import ContentKind, Fill, Mode, ProgramSlot

    local = at.astimezone(ZoneInfo(ZONE))
    end = local + timedelta(seconds=15 if kind == "hard" else 25)  # the item's length: no overlaps
    slot = ProgramSlot(station=station, name=f"{kind} {n:02d}", weekdays=[local.weekday()],
                       start_time=local.time().replace(microsecond=0),
                       end_time=end.time().replace(microsecond=0),
                       first_day=local.date(), last_day=local.date(), content_kind=ContentKind.TRACK,
                       track=track, mode=Mode.HARD if kind == "hard" else Mode.SOFT, fill=Fill.NONE)
    slot.full_clean()
    slot.save()
    return local.replace(microsecond=0)


def onair(args, var: Path) -> dict:
    from django.core.management import call_command

    from library.models import Track
    from library.services import track_analyse, track_import_file
    from playback.models import PlayLog
    from radio.models import Station
    from tests.library.audio import make_tone
    from tests.playback.soak import SoakRun, configure_station, make_library, tone_freq
    from tests.servers import free_port

    call_command("migrate", verbosity=0)
    configure_station(queue_depth=3, silence_alert=5)
    station = Station.objects.get(slug="main")
    station.time_zone = ZONE
    station.save()
    rng = random.Random(args.seed)
    lengths = [rng.uniform(args.song_min, args.song_max) for _ in range(args.songs)]
    print(f"making {args.songs} songs of {args.song_min:.0f}–{args.song_max:.0f} s and "
          f"{len(JINGLE_SECONDS)} jingles …", flush=True)
    song_ids = make_library(var / "library", args.songs, seconds=lambda n: lengths[n])

    def short(name: str, seconds: float, freq: float, kind: str) -> Track:
        path = make_tone(var / "library" / f"{name}.mp3", seconds=seconds, freq=freq, level_db=-12.0,
                         title=name)
        track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                  original_name=path.name, hints={"kind": kind})
        return track_analyse(track=track)

    for n, seconds in enumerate(JINGLE_SECONDS):
        short(f"jingle{n}", seconds, JINGLE_BASE + 40 * n, Track.Kind.JINGLE)
    news = short("news", 12.0, NEWS_FREQ, Track.Kind.NEWSFLASH)
    show = short("show", 20.0, SHOW_FREQ, Track.Kind.SHOW)
    freqs = [tone_freq(n) for n in range(args.songs)] + [NEWS_FREQ, SHOW_FREQ] \
        + [JINGLE_BASE + 40 * n for n in range(len(JINGLE_SECONDS))]

    env = {**os.environ, "PLAYBACK_RECORD_DIR": str(var / "heard"), "ONAIR_ADMIN_PASSWORD": "bench-admin-pw",
           "HOST": "127.0.0.1", "LOG_LEVEL": "INFO"}
    run = SoakRun(var_dir=var, port=free_port(), env=env)
    env["PORT"] = str(run.port)
    run.start()
    try:
        from django.utils import timezone

        t0 = timezone.now() + timedelta(seconds=args.warmup)
        programme = _programme(rng, t0, args.soft, args.hard, (args.gap_min, args.gap_max), args.hard_spacing)
        starts = []
        for n, (at, kind) in enumerate(programme):
            local = _slot(station, at, kind, news if kind == "hard" else show, n)
            starts.append((local, kind))
        from scheduling.planner import plan

        conflicts = plan(station, t0 - timedelta(minutes=1), starts[-1][0] + timedelta(minutes=1)).conflicts
        assert not conflicts, conflicts  # each start is measured against its own instant
        last = starts[-1][0]
        print(f"{args.soft} soft and {sum(k == 'hard' for _, k in starts)} hard starts until "
              f"{last:%H:%M:%S} ({(last - timezone.now()).total_seconds() / 60:.0f} min)", flush=True)
        soft_index = 0
        fade_for: dict[datetime, bool] = {}
        Station.objects.filter(pk=station.pk).update(fade_to_fit=False)
        next_action = time.monotonic() + rng.uniform(30, 90)
        while timezone.now() < last + timedelta(seconds=40):
            time.sleep(0.5)
            now = timezone.now()
            softs = [s for s, k in starts if k == "soft"]
            while soft_index < len(softs) and now >= softs[soft_index] + timedelta(seconds=10):
                fade_for[softs[soft_index]] = Station.objects.get(pk=station.pk).fade_to_fit
                soft_index += 1
                Station.objects.filter(pk=station.pk).update(fade_to_fit=soft_index % 2 == 1)
                print(f"{now:%H:%M:%S} soft start {soft_index}/{len(softs)} passed", flush=True)
            if time.monotonic() >= next_action:
                next_action = time.monotonic() + rng.uniform(30, 90)
                choice = rng.choice(["volume", "append", "skip"])
                if choice == "volume":
                    run.command("volume", "volume", {"volume": rng.randint(70, 100)})
                elif choice == "append":
                    run.queue_edit("append", "POST", "", {"track": rng.choice(song_ids), "at": "end"})
                else:
                    run.command("skip", "skip")
        exit_code = run.stop()
    finally:
        if run.process is not None and run.process.poll() is None:
            run.stop()

    from playback import aircheck

    print("reading the recording back …", flush=True)
    rec = aircheck.load(var / "heard")
    segs = aircheck.segments(rec, expected_freqs=sorted(set(freqs)))
    heard = [(s.freq_hz, aircheck.to_wall(rec, s.start_mono), aircheck.to_wall(rec, s.end_mono)) for s in segs]

    def first_heard(freq: float, at: datetime) -> float | None:
        target = at.timestamp()
        near = [start for f, start, _end in heard if abs(f - freq) < 1 and abs(start - target) < 30]
        return min(near, key=lambda s: abs(s - target)) - target if near else None

    hard_errors, soft_plain, soft_fade, missed = [], [], [], []
    for at, kind in starts:
        error = first_heard(NEWS_FREQ if kind == "hard" else SHOW_FREQ, at)
        if error is None:
            missed.append(f"{kind} {at:%H:%M:%S}")
        elif kind == "hard":
            hard_errors.append(error * 1000)
        elif fade_for.get(at):
            soft_fade.append(error)
        else:
            soft_plain.append(error)
    # Cuts before soft starts: items that ended early within 3 s of a soft start, not by an operator.
    cuts_plain, faded = 0, []
    for at, kind in starts:
        if kind != "soft":
            continue
        rows = PlayLog.objects.filter(station=station, ended_at__gte=at - timedelta(seconds=3),
                                      ended_at__lte=at + timedelta(seconds=20),
                                      outcome=PlayLog.Outcome.INTERRUPTED,
                                      failure_reason__startswith="programme start")
        for row in rows:
            if fade_for.get(at):
                track = row.track
                length = (track.cue_out or track.duration or 0) - (track.cue_in or 0) if track else 0
                faded.append(max(0.0, length - row.played_seconds))
            else:
                cuts_plain += 1
    latencies = [float(m.group(1)) for line in run.output
                 if (m := re.search(r"engine latency (\d+) ms", line))]
    figures = {
        "benchmark": "schedule_precision", "songs": args.songs, "song_seconds": [args.song_min, args.song_max],
        "exit_code": exit_code,
        "hard_start_error_ms": stats(hard_errors, 1),
        "hard_start_abs_error_ms": stats([abs(e) for e in hard_errors], 1),
        "soft_start_abs_error_s": stats([abs(e) for e in soft_plain], 2),
        "soft_start_error_s": stats(soft_plain, 2),
        "soft_fade_to_fit_abs_error_s": stats([abs(e) for e in soft_fade], 2),
        "soft_cut_items_without_fade": cuts_plain,
        "fade_to_fit_faded_s": stats(faded, 1),
        "engine_start_latency_ms": stats(latencies, 0),
        "operator_commands": len(run.events), "missed": missed,
    }
    return figures


# --- calendar ----------------------------------------------------------------------------------------

def calendar(args, var: Path) -> dict:
    from django.conf import settings
    from django.core.management import call_command

    from radio.google import encrypt_token
    from radio.models import GoogleCredential, Station, SyncRun
    from scheduling.calendar_sync import calendar_sync_run
    from scheduling.models import CalendarEvent, CalendarSource
    from tests.fakes.google import FakeGoogle

    call_command("migrate", verbosity=0)
    fake = FakeGoogle().start()
    settings.GOOGLE_API_ENDPOINT = fake.url
    settings.GOOGLE_OAUTH_ENDPOINT = fake.url
    station, _ = Station.objects.get_or_create(slug="cal", defaults={"name": "Calendar bench",
                                                                     "time_zone": ZONE})
    GoogleCredential.objects.update_or_create(station=station, defaults={
        "email": "bench@example.com", "refresh_token_encrypted": encrypt_token(fake.issue_refresh_token())})
    cal_id = "bench@group.calendar.google.com"
    fake.calendar.add_calendar(cal_id, time_zone=ZONE)
    source = CalendarSource.objects.create(station=station, calendar_id=cal_id, name="bench", window_days=14)
    rng = random.Random(args.seed)
    from django.utils import timezone

    base = timezone.now().replace(minute=0, second=0, microsecond=0)
    ids = []
    for n in range(args.events):
        start = base + timedelta(minutes=rng.randrange(0, 13 * 24 * 60 // 5) * 5)
        end = start + timedelta(minutes=rng.choice([5, 30, 60]))
        event = fake.calendar.add_event(cal_id, f"Programme {n}", start, end,
                                        description=f"play: genre Genre {n % 20}")
        ids.append(event["id"] if isinstance(event, dict) else event)
    t = time.perf_counter()
    full = calendar_sync_run(station=station)
    full_s = time.perf_counter() - t
    for event_id in rng.sample(ids, 10):
        fake.calendar.update_event(cal_id, event_id, summary="changed")
    t = time.perf_counter()
    incr = calendar_sync_run(station=station)
    incr_s = time.perf_counter() - t
    fake.stop()
    rows = CalendarEvent.objects.filter(calendar=source).count()
    assert full.status == SyncRun.Status.OK and incr.status == SyncRun.Status.OK, (full.error, incr.error)
    return {"calendar_events": args.events, "rows": rows, "full_sync_s": round(full_s, 2),
            "full_sync_requests": full.requests, "incremental_10_changes_s": round(incr_s, 3),
            "incremental_requests": incr.requests, "incremental_counts": incr.counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "onair", "calendar"], default="all")
    parser.add_argument("--soft", type=int, default=24)
    parser.add_argument("--hard", type=int, default=50)
    parser.add_argument("--gap-min", type=float, default=180.0)
    parser.add_argument("--gap-max", type=float, default=360.0)
    parser.add_argument("--hard-spacing", type=float, default=45.0,
                        help="at least this many seconds between a hard start and any other start")
    parser.add_argument("--songs", type=int, default=40)
    parser.add_argument("--song-min", type=float, default=150.0)
    parser.add_argument("--song-max", type=float, default=300.0)
    parser.add_argument("--warmup", type=float, default=90.0)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from tests.servers import PostgresServer, RedisServer

    postgres, redis_server = PostgresServer(), RedisServer()
    os.environ["DATABASE_URL"] = postgres.start().rsplit("/", 1)[0] + "/postgres"
    os.environ["REDIS_URL"] = redis_server.start()
    var = Path(tempfile.mkdtemp(prefix="onair-schedule-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SECRET_KEY="bench-" + "x" * 50,
                      ALLOWED_HOSTS="localhost,127.0.0.1", ONAIR_HTTPS="false", ONAIR_VAR_DIR=str(var),
                      LOG_LEVEL="WARNING", DB_CONN_MAX_AGE="0",
                      ONAIR_TOKEN_KEY=os.environ.get("ONAIR_TOKEN_KEY") or Fernet.generate_key().decode())
    figures: dict = {"benchmark": "schedule_precision"}
    try:
        import django

        django.setup()
        if args.part in ("all", "calendar"):
            figures.update(calendar(args, var))
            print(json.dumps({k: v for k, v in figures.items() if k.startswith(("calendar", "full", "incr"))}),
                  flush=True)
        if args.part in ("all", "onair"):
            figures.update(onair(args, var))
        if args.keep:
            print(f"kept: {var}")
        print(json.dumps(figures))
    finally:
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
