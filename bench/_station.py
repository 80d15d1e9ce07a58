"""Shared by bench/api_load.py and bench/ws_fanout.py: a seeded station, served as in production.

A private PostgreSQL and Redis (tests/servers.py); migrate; the data shape of issue 9
(100k tracks with English and Hebrew titles, artists and albums, genres and kinds;
50k as-run rows; a few dozen playable tone tracks so the playback worker really
plays); a station, an admin (a member, not a superuser: the role lookup is part of
every request) and an API token. The web process is started from the Procfile's
`web:` line and the playback worker from its `playback:` line (`--output dummy`),
with the environment a production install has (only the required variables: the
settings' own defaults otherwise). /proc readings: CPU seconds of a process tree,
RSS, and PostgreSQL's backends.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SLUG = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- realistic-looking catalogue words --------------------------------------------------------

EN_WORDS = ("love night heart summer rain city dream fire river ocean light shadow road home "
            "morning blue golden wild broken silver midnight dance sky star stone wind winter "
            "garden paper angel thunder island highway memory secret forever yesterday tonight "
            "sunrise sunset lonely sweet electric velvet crystal desert mountain").split()
HE_WORDS = ("אהבה לילה לב קיץ גשם עיר חלום אש נהר ים אור צל דרך בית בוקר כחול זהב פרא שבור "
            "כסף חצות ריקוד שמיים כוכב אבן רוח חורף גן נייר מלאך רעם אי כביש זיכרון סוד לנצח "
            "אתמול הלילה זריחה שקיעה בודד מתוק ירושלים תל אביב מדבר הר שיר שלום").split()
EN_FIRST = ("John Mary David Sarah Michael Emma James Olivia Daniel Grace Tom Lucy Peter Anna "
            "Chris Laura Sam Kate Ben Nina").split()
EN_LAST = ("Smith Johnson Brown Taylor Miller Wilson Moore Clark Lewis Walker Young King Wright "
           "Hill Green Baker Adams Nelson Carter Turner").split()
HE_FIRST = ("שלמה עפרה אריק שלום יהודית מתי נעמי יוסי רונית דוד "
            "אביב עומר רבקה יעל משה חנה איתי נועה גלי רמי").split()
HE_LAST = ("כהן לוי מזרחי פרץ ביטון אברהם פרידמן אזולאי דהן שפירא "
           "ארצי חזה גולן ברק רבינוביץ עזרא טל אלון נחום שמש").split()
BAND_EN = ("The {0}s", "{0} Band", "{0} Collective", "{0} & the {1}s", "{0} Orchestra")
BAND_HE = ("להקת {0}", "{0} ו{1}", "חברי {0}", "תזמורת {0}")
GENRES = ["Pop", "Rock", "Jazz", "Blues", "Folk", "Hip Hop", "Electronic", "Classical", "Reggae",
          "Soul", "Country", "Metal", "Indie", "World", "מזרחית", "ישראלי", "שירי ארץ ישראל",
          "רוק ישראלי", "ים תיכוני", "חסידי"]
# Roughly a station's mix: mostly songs.
KINDS = [("song", 86), ("jingle", 5), ("commercial", 4), ("show", 2), ("newsflash", 2), ("sample", 1)]
# Words clients search for: common and rare, whole words and prefixes, both scripts.
SEARCH_WORDS = ["love", "night", "summer rain", "Smith", "midn", "golden", "Walker", "forever",
                "אהבה", "לילה", "ירושלים", "כהן", "שיר", "עפרה", "זיכ", "ים"]


def _phrase(rng: random.Random, words: list[str], low: int, high: int) -> str:
    return " ".join(rng.sample(words, rng.randint(low, high)))


def _title(rng: random.Random, hebrew: bool) -> str:
    text = _phrase(rng, HE_WORDS if hebrew else EN_WORDS, 1, 4)
    return text if hebrew else text.title()


def _artist(rng: random.Random, hebrew: bool) -> str:
    first, last = (HE_FIRST, HE_LAST) if hebrew else (EN_FIRST, EN_LAST)
    if rng.random() < 0.7:
        return f"{rng.choice(first)} {rng.choice(last)}"
    words = HE_WORDS if hebrew else [w.title() for w in EN_WORDS]
    return rng.choice(BAND_HE if hebrew else BAND_EN).format(rng.choice(words), rng.choice(words))


# --- /proc -------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _stat_cpu(pid: int) -> float:
    """utime+stime+cutime+cstime of one process (reaped children included), in seconds."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return sum(int(v) for v in fields[11:15]) / CLK_TCK


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants, dead ones included (their parent reaped them)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += _stat_cpu(current)
        todo += _children(current)
    return total


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99),
            "max": round(ordered[-1], 2)}


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _procfile(name: str, env: dict[str, str]) -> list[str]:
    """The Procfile's command for `name`, its ${VAR:-default}s filled in from env."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1], m[2]), line.split(":", 1)[1])
            args = shlex.split(command)
            venv_bin = Path(sys.executable).parent
            if args[0] == "python":
                return [sys.executable, *args[1:]]
            return [str(venv_bin / args[0]) if (venv_bin / args[0]).exists() else args[0], *args[1:]]
    raise RuntimeError(f"no {name}: line in the Procfile")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw[:300].decode(errors="replace")


# --- the station ------------------------------------------------------------------------------

@dataclass
class BenchStation:
    tracks: int = 100_000
    plays: int = 50_000
    tones: int = 36
    seed: int = 20261130
    web_env: dict[str, str] = field(default_factory=dict)
    var: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="onair-load-")))
    port: int = 0
    token: str = ""
    web: subprocess.Popen | None = None
    playback: subprocess.Popen | None = None
    tone_ids: list[int] = field(default_factory=list)
    genre_ids: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # servers and Django in this process
    def start_servers(self) -> None:
        from tests.servers import PostgresServer, RedisServer, free_port

        self.postgres, self.redis = PostgresServer(), RedisServer()
        os.environ["DATABASE_URL"] = self.postgres.start().rsplit("/", 1)[0] + "/postgres"
        os.environ["REDIS_URL"] = self.redis.start()
        os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SECRET_KEY="bench-" + "x" * 50,
                          ALLOWED_HOSTS="localhost,127.0.0.1", ONAIR_HTTPS="false",
                          ONAIR_VAR_DIR=str(self.var),
                          ONAIR_TOKEN_KEY="7m0n7z4oGxN3n7oO3b0yQy3TQw6Q2bQ5cJ8Wb2a2dXM=",
                          ONAIR_DEFAULT_STATION_SLUG=SLUG, LOG_LEVEL="WARNING", DB_CONN_MAX_AGE="0")
        self.port = free_port()
        import django

        django.setup()
        from django.core.management import call_command

        t0 = time.perf_counter()
        call_command("migrate", verbosity=0)
        self.timings["migrate_s"] = round(time.perf_counter() - t0, 1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def postmaster_pid(self) -> int:
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    def seed_data(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db import connection

        from radio.models import Membership, Role, Station

        t0 = time.perf_counter()
        rng = random.Random(self.seed)
        # The migrations may have made the default station (ONAIR_DEFAULT_STATION_SLUG) already.
        self.station, _ = Station.objects.update_or_create(slug=SLUG, defaults=dict(
            name="Radio Bench", time_zone="Asia/Jerusalem", output="dummy", public_now_playing=True,
            queue_min_depth=3, no_repeat_hours=0))
        self.password = "bench-" + uuid.uuid4().hex
        admin = get_user_model().objects.create_user(username="bench-admin", password=self.password,
                                                     is_staff=True)
        Membership.objects.create(user=admin, station=self.station, role=Role.ADMIN)
        self._seed_tones(rng)
        self._seed_tracks(rng)
        self._seed_plays(rng)
        with connection.cursor() as cursor:  # what autovacuum would have done by now
            cursor.execute("VACUUM ANALYZE")
        self.timings["seed_s"] = round(time.perf_counter() - t0, 1)

    def _seed_tones(self, rng: random.Random) -> None:
        from library.models import Track
        from library.services import track_import_file
        from tests.library.audio import make_tone

        folder = self.var / "tones"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(self.tones):
            hebrew = n % 2 == 1
            path = make_tone(folder / f"tone{n:02d}.mp3", seconds=rng.uniform(30, 90), freq=300 + 20 * n,
                             level_db=-14.0)
            track = track_import_file(station=self.station, path=path, source=Track.Source.UPLOAD,
                                      original_name=path.name,
                                      hints={"title": _title(rng, hebrew), "artist": _artist(rng, hebrew)})
            # Analysis (loudness, silences) is ffmpeg time the API never sees: mark it done.
            Track.objects.filter(pk=track.pk).update(analysis=Track.Analysis.OK)
            self.tone_ids.append(track.pk)

    def _seed_tracks(self, rng: random.Random) -> None:
        from django.utils import timezone

        from library.models import Genre, Track, normalise

        genres = Genre.objects.bulk_create([Genre(station=self.station, name=n) for n in GENRES])
        self.genre_ids = [g.pk for g in genres]
        kinds, weights = zip(*KINDS, strict=True)
        now = timezone.now()
        batch: list[Track] = []
        for _ in range(self.tracks):
            hebrew = rng.random() < 0.45
            title, artist = _title(rng, hebrew), _artist(rng, hebrew)
            album = _phrase(rng, HE_WORDS if hebrew else EN_WORDS, 1, 3)
            genre = rng.choice(genres)
            played = rng.random() < 0.6
            track = Track(
                station=self.station, kind=rng.choices(kinds, weights)[0], title=title, artist=artist,
                album=album if hebrew else album.title(), genre=genre, year=rng.randint(1960, 2026),
                language="he" if hebrew else "en", duration=round(rng.uniform(120, 420), 2),
                bitrate=128_000, sample_rate=44_100, mime_type="audio/mpeg", size=rng.randint(2, 12) * 10**6,
                checksum=f"{rng.getrandbits(128):032x}", source=Track.Source.DRIVE,
                source_id=f"{rng.getrandbits(120):030x}",
                source_path=f"Songs/{genre.name}/{artist}/{title}.mp3",
                source_name=f"{title}.mp3", analysis=Track.Analysis.OK,
                play_count=rng.randint(1, 400) if played else 0,
                last_played_at=now - timedelta(minutes=rng.randint(1, 400_000)) if played else None,
                dedupe_key=f"{normalise(artist)}|{normalise(title)}")
            if hasattr(track, "derive_keys"):  # every column save() derives (bulk_create skips save)
                track.derive_keys()
            batch.append(track)
            if len(batch) == 5000:
                Track.objects.bulk_create(batch)
                batch = []
        if batch:
            Track.objects.bulk_create(batch)

    def _seed_plays(self, rng: random.Random) -> None:
        from django.utils import timezone

        from library.models import Track
        from playback.models import PlayLog

        rows = list(Track.objects.filter(station=self.station).values_list("id", "title", "artist", "kind",
                                                                            "duration"))
        outcomes = [("completed", 92), ("skipped", 5), ("interrupted", 2), ("failed", 1)]
        reasons = [("autodj", 70), ("schedule", 15), ("manual", 10), ("campaign", 5)]
        ended = timezone.now() - timedelta(minutes=5)
        batch: list[PlayLog] = []
        for _ in range(self.plays):
            track_id, title, artist, kind, duration = rng.choice(rows)
            outcome = rng.choices(*zip(*outcomes, strict=True))[0]
            played = (duration or 180.0) if outcome == "completed" else rng.uniform(5, duration or 180.0)
            started = ended - timedelta(seconds=played)
            batch.append(PlayLog(station=self.station, track_id=track_id, title=title, artist=artist, kind=kind,
                                 started_at=started, ended_at=ended, played_seconds=round(played, 2),
                                 outcome=outcome, reason=rng.choices(*zip(*reasons, strict=True))[0],
                                 failure_reason="file unreadable" if outcome == "failed" else ""))
            ended = started - timedelta(seconds=rng.uniform(0, 2))
            if len(batch) == 5000:
                PlayLog.objects.bulk_create(batch)
                batch = []
        if batch:
            PlayLog.objects.bulk_create(batch)

    # processes
    def process_env(self) -> dict[str, str]:
        """A production install's environment: the required variables, the settings' defaults otherwise."""
        env = {k: v for k, v in os.environ.items() if k not in ("DB_CONN_MAX_AGE", "LOG_LEVEL")}
        env.update(HOST="127.0.0.1", PORT=str(self.port), PYTHONUNBUFFERED="1", **self.web_env)
        return env

    def start_web(self) -> None:
        env = self.process_env()
        command = _procfile("web", env)

        def more_files() -> None:  # room for thousands of sockets
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

        self.web_command = command
        self.web = subprocess.Popen(command, env=env, cwd=ROOT, preexec_fn=more_files,
                                    stdout=open(self.var / "web.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.get("/login/")[0] != 200:
            if self.web.poll() is not None or time.monotonic() > deadline:
                log = (self.var / "web.log").read_text()[-3000:]
                raise RuntimeError("the web process did not start:\n" + log)
            time.sleep(0.2)
        status, body = self.call("POST", "/api/v1/auth/token",
                                 {"username": "bench-admin", "password": self.password}, auth=False)
        if status != 200:
            raise RuntimeError(f"no API token: HTTP {status} {body}")
        self.token = body["token"]

    def start_playback(self, timeout: float = 60.0) -> None:
        env = self.process_env()
        command = [*_procfile("playback", env), "--output", "dummy"]
        self.playback = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.STDOUT,
                                         stdout=open(self.var / "playback.log", "w"))
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.call("GET", f"/api/v1/stations/{SLUG}/now-playing")
            if status == 200 and body.get("is_playing"):
                return
            if self.playback.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the playback worker is not playing:\n"
                                   + (self.var / "playback.log").read_text()[-3000:])
            time.sleep(0.5)

    def stop(self) -> None:
        for process in (self.playback, self.web):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up when a start failed
            pass
        if hasattr(self, "redis"):
            self.redis.stop()
        if hasattr(self, "postgres"):
            self.postgres.stop()

    # HTTP for setup (the load itself uses its own connections)
    def call(self, method: str, path: str, body: dict | None = None, *, auth: bool = True,
             timeout: float = 30.0) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Accept", "application/json")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if auth and self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read())
        except OSError as error:
            return 0, str(error)

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path, auth=False, timeout=2)

    # PostgreSQL's side
    def pg_connections(self) -> dict[str, Any]:
        """Client backends other than this script's own, by state and by application."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity "
                           "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1")
            by_state = dict(cursor.fetchall())
            cursor.execute("SELECT application_name, count(*) FROM pg_stat_activity "
                           "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1")
            by_application = dict(cursor.fetchall())
            cursor.execute("SHOW max_connections")
            limit = int(cursor.fetchone()[0])
        return {"total": sum(by_state.values()), "by_state": by_state, "by_application": by_application,
                "max_connections": limit}

    def cpu(self) -> dict[str, float]:
        return {"web": tree_cpu(self.web.pid), "postgres": tree_cpu(self.postmaster_pid),
                "playback": tree_cpu(self.playback.pid) if self.playback else 0.0,
                "client": sum(os.times()[:2])}

    def setup(self) -> None:
        """Servers, data, the web process and the playback worker playing."""
        self.start_servers()
        self.seed_data()
        print(f"seeded {self.tracks} tracks, {self.plays} as-run rows, {self.tones} tones in "
              f"{self.timings['seed_s']} s", flush=True)
        self.start_web()
        self.start_playback()
        print(f"web on {self.url} ({' '.join(self.web_command[1:])}), playback worker playing", flush=True)
