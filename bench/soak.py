"""Soak benchmark: the station as `make run` starts it, for N minutes, with outages, measured at the output.

    uv run --frozen python bench/soak.py --minutes 60

A private PostgreSQL and Redis; `manage.py run_station` (supervisord and every
Procfile process) reaches PostgreSQL through a TCP proxy; 40 tone songs of 5–15 s
go round under auto-DJ while an operator sends a command through the REST API
every 3–10 s (skip, pause/resume, play-now, queue append/move/remove, volume).
During the run: the database path is blackholed for 30 s (connections open,
nothing answers), the playback worker is killed with SIGKILL, and Redis is
stopped for 30 s. The playback worker records what a listener hears; the
recording is read back (playback.aircheck) and held against the as-run log.
Prints transitions, max and p99 silence, restarts, commands answered and their
p95 latency, and any rule broken; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--songs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--keep", action="store_true", help="keep the var folder (recording, logs)")
    args = parser.parse_args()

    from tests.servers import PostgresServer, RedisServer, TcpProxy, free_port

    postgres, redis_server = PostgresServer(), RedisServer()
    database = postgres.start().rsplit("/", 1)[0] + "/postgres"
    os.environ["DATABASE_URL"] = database
    os.environ["REDIS_URL"] = redis_server.start()
    var = Path(tempfile.mkdtemp(prefix="onair-soak-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SECRET_KEY="bench-" + "x" * 50,
                      ALLOWED_HOSTS="localhost,127.0.0.1", ONAIR_HTTPS="false", ONAIR_VAR_DIR=str(var),
                      LOG_LEVEL="WARNING", DB_CONN_MAX_AGE="0")
    proxy = TcpProxy(urlsplit(database).port)
    run = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from tests.playback.soak import SoakRun, configure_station, judge, make_library

        call_command("migrate", verbosity=0)
        configure_station(queue_depth=3, silence_alert=5)
        rng = random.Random(args.seed)
        lengths = [rng.uniform(5.0, 15.0) for _ in range(args.songs)]
        track_ids = make_library(var / "library", args.songs, seconds=lambda n: lengths[n])
        through_proxy = database.replace(f":{urlsplit(database).port}/", f":{proxy.port}/")
        env = {**os.environ, "DATABASE_URL": through_proxy,
               "PLAYBACK_RECORD_DIR": str(var / "heard"), "ONAIR_ADMIN_PASSWORD": "soak-admin-pw",
               "HOST": "127.0.0.1", "LOG_LEVEL": "INFO"}
        run = SoakRun(var_dir=var, port=free_port(), env=env)
        env["PORT"] = str(run.port)
        run.start()
        started = time.monotonic()
        total = args.minutes * 60
        plan = {"db_blackhole": 0.3 * total, "kill": 0.5 * total, "redis_stop": 0.7 * total}
        excused: list[tuple[float, float, str]] = []
        done: set[str] = set()
        outage_until: dict[str, float] = {}
        last_report = started
        while time.monotonic() - started < total:
            due = [started + at for name, at in plan.items() if name not in done] + list(outage_until.values())
            time.sleep(max(0.2, min([rng.uniform(3.0, 10.0), *(d - time.monotonic() for d in due)])))
            now = time.monotonic()
            elapsed = now - started
            if "db_blackhole" not in done and elapsed >= plan["db_blackhole"]:
                proxy.blackhole()
                outage_until["db"] = now + 30
                done.add("db_blackhole")
                print(f"+{elapsed:.0f} s database blackholed for 30 s", flush=True)
            elif "db" in outage_until and now >= outage_until["db"]:
                proxy.restore()
                excused.append((outage_until.pop("db") - 30, now, "database blackholed 30 s"))
                print(f"+{elapsed:.0f} s database path restored", flush=True)
            elif "kill" not in done and elapsed >= plan["kill"]:
                event = run.kill_playback()
                done.add("kill")
                print(f"+{elapsed:.0f} s kill -9 playback ({event.detail})", flush=True)
            elif "redis_stop" not in done and elapsed >= plan["redis_stop"]:
                redis_server.process.kill()
                redis_server.process.wait()
                outage_until["redis"] = now + 30
                done.add("redis_stop")
                print(f"+{elapsed:.0f} s Redis stopped for 30 s", flush=True)
            elif "redis" in outage_until and now >= outage_until["redis"]:
                redis_server.start()
                excused.append((outage_until.pop("redis") - 30, now, "Redis stopped 30 s"))
                print(f"+{elapsed:.0f} s Redis back", flush=True)
            else:
                run.random_operator_action(rng, track_ids)
            if now - last_report > 300:
                last_report = now
                print(f"+{elapsed:.0f} s {len(run.events)} commands so far", flush=True)
        ended = time.monotonic()
        if "db" in outage_until:
            proxy.restore()
        exit_code = run.stop()
        verdict = judge(run, track_ids, started=started, ended=ended, excused=excused)
        (var / "events.json").write_text(json.dumps([e.__dict__ for e in run.events], default=str))
        figures = {"benchmark": "soak", **verdict.figures, "exit_code": exit_code,
                   "problems": verdict.problems[:50], "problem_count": len(verdict.problems)}
        for problem in verdict.problems[:50]:
            print("problem:", problem)
        if args.keep:
            print(f"kept: {var}")
        print(json.dumps(figures))
    finally:
        if run is not None and run.process is not None and run.process.poll() is None:
            run.stop()
        proxy.close()
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
