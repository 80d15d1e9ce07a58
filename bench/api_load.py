"""API load benchmark: 32 concurrent clients per endpoint against the web process as the Procfile runs it.

    uv run --frozen python bench/api_load.py [--tracks 100000] [--plays 50000] [--clients 32]
        [--seconds 30] [--endpoints search genre now_playing queue history history_deep public]

A private PostgreSQL 15 and Redis, the data shape of issue 9 (bench/_station.py: 100k
tracks in English and Hebrew, 50k as-run rows, the playback worker playing tone
tracks), uvicorn started from the Procfile's `web:` line with a production
environment. For each endpoint, `--clients` threads, each with its own keep-alive
HTTP connection, send requests back to back for `--seconds`. Per endpoint: requests,
req/s, latency p50/p95/p99/max, errors by status, CPU seconds of the web process and
of PostgreSQL (the postmaster and every backend, exited ones included) and of this
client, and PostgreSQL client connections right after the endpoint's run.
With `--rate R` the clients together offer R requests/s instead (paced; each latency is
timed from when its request was due, so a server that falls behind is not excused).
Works with page-number and cursor pagination (deep history pages: `?page=N`, or the
`next` links walked once beforehand). The last line is JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _station import SEARCH_WORDS, SLUG, BenchStation, percentiles  # noqa: E402

ENDPOINTS = ["search", "genre", "now_playing", "queue", "history", "history_deep", "public"]
ORDERINGS = ["-play_count", "title", "-created_at", "artist", "duration", "-last_played_at"]
API = f"/api/v1/stations/{SLUG}"


def _path_only(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def deep_history_paths(station: BenchStation, deepest: int, budget_s: float) -> tuple[list[str], dict]:
    """Paths of history pages spread down to page `deepest` (or the last page)."""
    status, first = station.call("GET", f"{API}/history")
    if status != 200 or not isinstance(first, dict):
        raise RuntimeError(f"history answered {status}: {first}")
    per_page = max(1, len(first.get("results", [])))
    next_url = first.get("next") or ""
    fractions = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
    if "count" in first and "page=" in next_url:
        last = min(deepest, math.ceil(first["count"] / per_page))
        pages = sorted({max(2, round(last * f)) for f in fractions})
        return [f"{API}/history?page={p}" for p in pages], {"pagination": "page", "pages": pages}
    # Cursor pagination: no page numbers; walk the `next` links once and keep some.
    walked, started = [], time.monotonic()
    while next_url and len(walked) < deepest - 1 and time.monotonic() - started < budget_s:
        walked.append(_path_only(next_url))
        status, page = station.call("GET", walked[-1])
        if status != 200:
            raise RuntimeError(f"history page {len(walked) + 1} answered {status}: {page}")
        next_url = page.get("next") or ""
    if not walked:
        return [f"{API}/history"], {"pagination": "cursor", "pages": [1]}
    picks = sorted({max(0, round(len(walked) * f) - 1) for f in fractions})
    return [walked[i] for i in picks], {"pagination": "cursor", "pages": [i + 2 for i in picks],
                                        "walk_s": round(time.monotonic() - started, 1)}


def endpoint_paths(name: str, station: BenchStation, info: dict) -> tuple[list[str], bool]:
    """(paths to rotate through, authenticated?)"""
    if name == "search":
        return [f"{API}/tracks?search={quote(w)}" for w in SEARCH_WORDS], True
    if name == "genre":
        return [f"{API}/tracks?genre={g}&ordering={o}" for g in station.genre_ids for o in ORDERINGS], True
    if name == "now_playing":
        return [f"{API}/now-playing"], True
    if name == "queue":
        return [f"{API}/queue"], True
    if name == "history":
        return [f"{API}/history"], True
    if name == "history_deep":
        paths, info["history_deep"] = deep_history_paths(station, info["deep_page"], budget_s=120)
        return paths, True
    if name == "public":
        return [f"/api/v1/public/stations/{SLUG}/now-playing"], False
    raise SystemExit(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")


class Client(threading.Thread):
    def __init__(self, port: int, paths: list[str], headers: dict[str, str], offset: int,
                 ready: threading.Semaphore, start: threading.Event, deadline: list[float],
                 interval: float = 0.0, clients: int = 1) -> None:
        super().__init__(daemon=True)
        # Paced: one request every `interval` s, the clients' first ones spread over one interval
        # (0: back to back).
        self.interval, self.clients = interval, clients
        self.port, self.paths, self.headers, self.offset = port, paths, headers, offset
        self.ready, self.start_event, self.deadline = ready, start, deadline
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.bytes = 0
        self.connection: http.client.HTTPConnection | None = None

    def _request(self, path: str) -> int:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        self.bytes += len(response.read())
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
            self.connection = None
        return response.status

    def run(self) -> None:
        n = self.offset
        try:  # warm-up: opens the connection, not counted
            self._request(self.paths[n % len(self.paths)])
        except (OSError, http.client.HTTPException):
            self.connection = None
        self.bytes = 0
        self.ready.release()
        self.start_event.wait()
        due = time.perf_counter() + self.interval * self.offset / self.clients
        while (due if self.interval else time.perf_counter()) < self.deadline[0]:
            n += 1
            path = self.paths[n % len(self.paths)]
            t0 = time.perf_counter()
            if self.interval:
                # Timed from when the request was due, so a slow server is not excused for the
                # requests it delayed (no coordinated omission).
                if due > t0:
                    time.sleep(due - t0)
                t0, due = due, due + self.interval
            try:
                status = self._request(path)
            except (OSError, http.client.HTTPException) as exc:
                self.errors[f"connection: {type(exc).__name__}"] += 1
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
                continue
            self.latencies.append((time.perf_counter() - t0) * 1000)
            if status >= 400:
                self.errors[str(status)] += 1
        if self.connection is not None:
            self.connection.close()


def run_endpoint(station: BenchStation, name: str, paths: list[str], auth: bool, clients: int,
                 seconds: float, rate: float = 0.0) -> dict:
    headers = {"Accept": "application/json", "Connection": "keep-alive"}
    if auth:
        headers["Authorization"] = f"Token {station.token}"
    ready, start, deadline = threading.Semaphore(0), threading.Event(), [0.0]
    interval = clients / rate if rate else 0.0
    threads = [Client(station.port, paths, headers, i, ready, start, deadline, interval, clients)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for _ in threads:  # every client has made its warm-up request
        ready.acquire(timeout=120)
    cpu_before = station.cpu()
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    start.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    cpu_after = station.cpu()
    latencies = [v for t in threads for v in t.latencies]
    errors = sum((t.errors for t in threads), Counter())
    cpu = {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_before}
    done = len(latencies)
    result = {
        "endpoint": name, "paths": len(paths), "clients": clients, "offered_rate": rate or None,
        "seconds": round(wall, 2),
        "requests": done, "req_per_s": round(done / wall, 1), "latency_ms": percentiles(latencies),
        "errors": dict(errors), "error_count": sum(errors.values()),
        "mean_response_bytes": round(sum(t.bytes for t in threads) / max(1, done)),
        "cpu_s": cpu, "web_cpu_share": round(cpu["web"] / wall, 2),
        "cpu_ms_per_request": {k: round(1000 * v / max(1, done), 2) for k, v in cpu.items()},
        "pg_connections_after": station.pg_connections(),
    }
    lat = result["latency_ms"]
    print(f"{name:>13}: {done:6d} req {result['req_per_s']:7.1f}/s  p50 {lat['p50']} p95 {lat['p95']} "
          f"p99 {lat['p99']} ms  errors {dict(errors) or 0}  cpu web {cpu['web']} s pg {cpu['postgres']} s  "
          f"pg conns {result['pg_connections_after']['total']}", flush=True)
    return result


def search_matches(station: BenchStation) -> dict:
    """What each search word finds (page 1, and the count when the list gives one): the search must work."""
    found = {}
    for word in SEARCH_WORDS:
        status, body = station.call("GET", f"{API}/tracks?search={quote(word)}")
        if status != 200:
            found[word] = f"HTTP {status}"
            continue
        found[word] = {"page": len(body.get("results", [])), "count": body.get("count")}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--plays", type=int, default=50_000)
    parser.add_argument("--tones", type=int, default=36, help="playable tone tracks the worker plays")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0, help="per endpoint")
    parser.add_argument("--endpoints", nargs="+", default=ENDPOINTS, choices=ENDPOINTS)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="paced: total requests/s offered by the clients together (0: each client "
                             "sends back to back, i.e. measures saturation)")
    parser.add_argument("--deep-page", type=int, default=900, help="deepest history page asked for")
    parser.add_argument("--web-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the web process and worker (e.g. DB_CONN_MAX_AGE=0)")
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args()

    station = BenchStation(tracks=args.tracks, plays=args.plays, tones=args.tones, seed=args.seed,
                           web_env=dict(kv.split("=", 1) for kv in args.web_env))
    results, info = [], {"deep_page": args.deep_page}
    try:
        station.setup()
        matches = search_matches(station) if "search" in args.endpoints else {}
        connections_before = station.pg_connections()
        for name in args.endpoints:
            paths, auth = endpoint_paths(name, station, info)
            results.append(run_endpoint(station, name, paths, auth, args.clients, args.seconds, args.rate))
        status, now_playing = station.call("GET", f"{API}/now-playing")
        still_playing = status == 200 and bool(now_playing.get("is_playing"))
        health = station.call("GET", "/healthz", auth=False)[1]
        connections_end = station.pg_connections()
        web_alive = station.web.poll() is None
    finally:
        station.stop()
    info.pop("deep_page")
    figures = {
        "benchmark": "api_load", "tracks": args.tracks, "plays": args.plays, "clients": args.clients,
        "rate": args.rate or None,
        "seconds_per_endpoint": args.seconds, "web_command": " ".join(station.web_command[1:]),
        "web_env": station.web_env, "setup": station.timings, **info,
        "search_matches": matches, "pg_connections_before": connections_before,
        "pg_connections_end": connections_end, "playing_at_end": still_playing, "web_alive_at_end": web_alive,
        "healthz_database": health.get("checks", {}).get("database") if isinstance(health, dict) else health,
        "endpoints": {r["endpoint"]: r for r in results},
    }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
