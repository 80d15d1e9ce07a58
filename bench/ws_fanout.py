"""WebSocket fan-out benchmark: 1,000 sockets on one station, the playback worker playing.

    uv run --frozen python bench/ws_fanout.py [--sockets 1000] [--changes 20] [--idle 30]
        [--tracks 100000] [--plays 50000] [--change pause|queue]

Same station, data and processes as bench/api_load.py (bench/_station.py): uvicorn
from the Procfile's `web:` line, the playback worker playing tone tracks. Opens
`--sockets` WebSocket clients on `/ws/stations/bench/` (token on the handshake, the
server's own Origin, permessage-deflate offered as browsers do) and waits for each
one's snapshot. Then:

(a) a change → every socket: `--changes` times an API pause/resume (or a queue
    append with `--change queue`), timed from the API call to the arrival, on each
    socket, of the first message that reflects it; p50/p95/p99/max over all
    (socket, change) pairs, and the ones that never came;
(b) `--idle` seconds with nothing happening but the worker playing: messages and
    bytes per socket per second, message types, how late the worker's status
    messages arrive (their `heartbeat_at` against the arrival clock, when they carry
    one), and the web process's CPU share;
(c) the web process's RSS before the sockets, with them open, and after closing
    them: KB per socket, and what is returned.

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _station import SLUG, BenchStation, percentiles, raise_nofile, rss_kb  # noqa: E402

API = f"/api/v1/stations/{SLUG}"
PAUSED = {True: re.compile(r'"paused"\s*:\s*true'), False: re.compile(r'"paused"\s*:\s*false')}
TYPE = re.compile(r'"type"\s*:\s*"(\w+)"')
HEARTBEAT = re.compile(r'"heartbeat_at"\s*:\s*"([^"]+)"')


class Socket:
    __slots__ = ("ws", "count", "bytes", "capture", "closed", "lags", "types", "task")

    def __init__(self, ws) -> None:
        self.ws, self.count, self.bytes, self.capture = ws, 0, 0, None
        self.closed: int | None = None
        self.lags: list[float] | None = None
        self.types: Counter | None = None

    async def read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self.ws:
                arrived = time.perf_counter()
                text = message if isinstance(message, str) else message.decode()
                self.count += 1
                self.bytes += len(message) if isinstance(message, bytes) else len(text.encode())
                if self.capture is not None:
                    self.capture.append((arrived, text))
                if self.types is not None:
                    kind = TYPE.search(text, 0, 80)
                    self.types[kind[1] if kind else "?"] += 1
                    beat = HEARTBEAT.search(text) if self.lags is not None else None
                    if beat:
                        self.lags.append((time.time() - datetime.fromisoformat(beat[1]).timestamp()) * 1000)
        except ConnectionClosed as closed:
            self.closed = closed.rcvd.code if closed.rcvd else 1006


async def open_sockets(station: BenchStation, n: int, concurrency: int, compression: bool) -> tuple:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{station.port}/ws/stations/{SLUG}/"
    limit, sockets, times, failures = asyncio.Semaphore(concurrency), [], [], Counter()

    async def one() -> None:
        async with limit:
            t0 = time.perf_counter()
            try:
                ws = await connect(url, origin=f"http://127.0.0.1:{station.port}", open_timeout=60,
                                   additional_headers={"Authorization": f"Token {station.token}"},
                                   ping_interval=None, max_size=None,
                                   compression="deflate" if compression else None)
                first = json.loads(await asyncio.wait_for(ws.recv(), 60))
            except Exception as exc:  # noqa: BLE001 - counted and reported by kind
                failures[type(exc).__name__] += 1
                return
            if first.get("type") != "playback_status":
                failures[f"first message {first.get('type')}"] += 1
            times.append((time.perf_counter() - t0) * 1000)
            socket = Socket(ws)
            socket.task = asyncio.create_task(socket.read())
            sockets.append(socket)

    await asyncio.gather(*(one() for _ in range(n)))
    return sockets, times, failures


async def change_once(station: BenchStation, sockets: list[Socket], mode: str, n: int,
                      timeout: float) -> tuple[list[float], int, float, float | None]:
    """One change; (latencies ms of the sockets that saw it, sockets that did not, API ms, first ms)."""
    for socket in sockets:
        socket.capture = []
    t0 = time.perf_counter()
    if mode == "pause":
        pause = n % 2 == 0
        action = "pause" if pause else "resume"
        status, body = await asyncio.to_thread(station.call, "POST", f"{API}/player/{action}")
        pattern = PAUSED[pause]

        def reflects(text: str) -> bool:
            return pattern.search(text) is not None
    else:
        status, body = await asyncio.to_thread(station.call, "POST", f"{API}/queue",
                                               {"track": station.tone_ids[n % len(station.tone_ids)]})
        item = body.get("id") if isinstance(body, dict) else None
        marks = (f'"id":{item},', f'"id": {item},')

        def reflects(text: str) -> bool:
            if not any(mark in text for mark in marks):
                return False
            data = json.loads(text).get("data") or {}
            return any(entry.get("id") == item for entry in data.get("queue") or [])
    api_ms = (time.perf_counter() - t0) * 1000
    if status >= 300:
        raise RuntimeError(f"the change was refused: HTTP {status} {body}")
    hits: dict[int, float] = {}
    seen = [0] * len(sockets)
    deadline = time.perf_counter() + timeout
    while len(hits) < len(sockets) and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
        for index, socket in enumerate(sockets):
            if index in hits:
                continue
            captured = socket.capture
            for arrived, text in captured[seen[index]:]:
                if reflects(text):
                    hits[index] = (arrived - t0) * 1000
                    break
            seen[index] = len(captured)
    for socket in sockets:
        socket.capture = None
    latencies = list(hits.values())
    return latencies, len(sockets) - len(hits), api_ms, min(latencies) if latencies else None


async def run(station: BenchStation, args: argparse.Namespace) -> dict:
    web = station.web.pid
    rss_before = rss_kb(web)
    cpu0 = station.cpu()
    t0 = time.perf_counter()
    sockets, connect_ms, failures = await open_sockets(station, args.sockets, args.connect_concurrency,
                                                       not args.no_compression)
    connect_wall = time.perf_counter() - t0
    cpu1 = station.cpu()
    print(f"{len(sockets)} sockets open in {connect_wall:.1f} s ({dict(failures) or 'no failures'})",
          flush=True)
    await asyncio.sleep(2)
    rss_open = rss_kb(web)
    pg_with_sockets = await asyncio.to_thread(station.pg_connections)

    # (a) a change → every socket
    all_latencies, missed, api_ms, first_ms, per_change = [], 0, [], [], []
    cpu2 = station.cpu()
    for n in range(args.changes):
        latencies, lost, api, first = await change_once(station, sockets, args.change, n, args.change_timeout)
        all_latencies += latencies
        missed += lost
        api_ms.append(api)
        if first is not None:
            first_ms.append(first)
        summary = percentiles(latencies)
        per_change.append({"p50": summary["p50"], "p95": summary["p95"], "max": summary["max"], "missed": lost})
        print(f"change {n + 1:2d}: API {api:6.1f} ms, first socket {first or 0:7.1f} ms, "
              f"p95 {summary['p95']} ms, max {summary['max']} ms, missed {lost}", flush=True)
        await asyncio.sleep(args.gap)
    cpu3 = station.cpu()
    if args.change == "pause" and args.changes % 2 == 1:
        await asyncio.to_thread(station.call, "POST", f"{API}/player/resume")

    # (b) idle, the worker playing
    await asyncio.sleep(3)
    for socket in sockets:
        socket.count, socket.bytes, socket.lags, socket.types = 0, 0, [], Counter()
    cpu4, t4 = station.cpu(), time.perf_counter()
    await asyncio.sleep(args.idle)
    cpu5, idle_wall = station.cpu(), time.perf_counter() - t4
    open_now = [s for s in sockets if s.closed is None]
    messages = sum(s.count for s in sockets)
    received = sum(s.bytes for s in sockets)
    types = sum((s.types for s in sockets), Counter())
    lags = [v for s in sockets for v in s.lags]
    for socket in sockets:
        socket.types = socket.lags = None
    rss_still_open = rss_kb(web)

    # (c) close them all; what the web process gives back
    closed_by_server = Counter(s.closed for s in sockets if s.closed is not None)

    async def close(socket: Socket) -> None:
        await socket.ws.close()
        socket.task.cancel()

    await asyncio.gather(*(close(s) for s in sockets), return_exceptions=True)
    await asyncio.sleep(5)
    rss_after = rss_kb(web)
    n = max(1, len(sockets))

    def cpu_delta(a: dict, b: dict) -> dict:
        return {k: round(b[k] - a[k], 2) for k in a}

    idle_cpu = cpu_delta(cpu4, cpu5)
    return {
        "sockets": args.sockets, "opened": len(sockets), "connect_failures": dict(failures),
        "connect_s": round(connect_wall, 2), "connect_ms": percentiles(connect_ms),
        "connect_cpu_s": cpu_delta(cpu0, cpu1), "pg_connections_with_sockets": pg_with_sockets,
        "change": {"mode": args.change, "changes": args.changes, "pairs": len(all_latencies) + missed,
                   "latency_ms": percentiles(all_latencies), "missed": missed,
                   "api_ms": percentiles(api_ms), "first_socket_ms": percentiles(first_ms),
                   "per_change": per_change, "cpu_s": cpu_delta(cpu2, cpu3)},
        "idle": {"seconds": round(idle_wall, 1), "sockets_open": len(open_now),
                 "messages_per_socket_per_s": round(messages / n / idle_wall, 3),
                 "bytes_per_socket_per_s": round(received / n / idle_wall, 1),
                 "message_types": dict(types), "status_lag_ms": percentiles(lags),
                 "cpu_s": idle_cpu, "web_cpu_share": round(idle_cpu["web"] / idle_wall, 3),
                 "postgres_cpu_share": round(idle_cpu["postgres"] / idle_wall, 3)},
        "memory": {"rss_before_kb": rss_before, "rss_open_kb": rss_open, "rss_after_idle_kb": rss_still_open,
                   "rss_after_close_kb": rss_after, "kb_per_socket": round((rss_open - rss_before) / n, 1),
                   "returned_kb": rss_still_open - rss_after,
                   "kept_after_close_kb": rss_after - rss_before},
        "closed_by_server": {str(k): v for k, v in closed_by_server.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--change", choices=["pause", "queue"], default="pause")
    parser.add_argument("--change-timeout", type=float, default=15.0,
                        help="seconds a change may take to arrive")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--plays", type=int, default=50_000)
    parser.add_argument("--tones", type=int, default=36)
    parser.add_argument("--web-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args()
    raise_nofile()

    station = BenchStation(tracks=args.tracks, plays=args.plays, tones=args.tones, seed=args.seed,
                           web_env=dict(kv.split("=", 1) for kv in args.web_env))
    try:
        station.setup()
        try:
            from uvloop import run as run_loop  # uvicorn[standard] brings it: a client that keeps up
        except ImportError:
            run_loop = asyncio.run
        result = run_loop(run(station, args))
        result["web_alive_at_end"] = station.web.poll() is None
    finally:
        station.stop()
    figures = {"benchmark": "ws_fanout", "tracks": args.tracks, "plays": args.plays,
               "web_command": " ".join(station.web_command[1:]), "web_env": station.web_env,
               "setup": station.timings, **result}
    change, idle, memory = figures["change"], figures["idle"], figures["memory"]
    latency = change["latency_ms"]
    print(f"change → {figures['opened']} sockets: p50 {latency['p50']} p95 {latency['p95']} "
          f"p99 {latency['p99']} max {latency['max']} ms, missed {change['missed']}; "
          f"idle: {idle['messages_per_socket_per_s']} msg/socket/s, "
          f"{idle['bytes_per_socket_per_s']} B/socket/s, "
          f"web CPU {idle['web_cpu_share'] * 100:.1f} %; memory {memory['kb_per_socket']} KB/socket, "
          f"{memory['returned_kb']} KB returned", flush=True)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
