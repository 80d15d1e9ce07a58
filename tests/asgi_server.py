"""The real web process for tests: uvicorn serving settings.asgi, as the Procfile runs it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.fixtures import ROOT
from tests.servers import free_port


@contextmanager
def uvicorn_server(env: dict[str, str], *extra: str) -> Iterator[int]:
    """Start uvicorn on a free port with --proxy-headers (as the Procfile); yields the port."""
    port = free_port()
    # Its log goes to a file, never a pipe nobody reads (a full pipe stops the server mid-test).
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "settings.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--proxy-headers", "--log-level", "warning",
         "--timeout-graceful-shutdown", "2", *extra],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log.seek(0)
                output = log.read()
                log.close()
                raise RuntimeError(f"uvicorn did not start: {output}") from None
            time.sleep(0.1)
    try:
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
