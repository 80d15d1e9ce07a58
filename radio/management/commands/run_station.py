"""`python manage.py run_station`: the whole station on one machine (what `make run` calls).

Migrates, makes sure an admin account exists, then runs the Procfile's processes
(and the embedded Redis unless REDIS_URL is set) under supervisord in the
foreground: a process that dies is restarted on its own (supervisord's backoff
between failed starts: 1 s, 2 s, 3 s…) and never takes the others down. The
config goes to `var/supervisord.conf`, each process's output to `var/log/NAME.log`,
shown here line by line with the process's name in front. While it runs,
`supervisorctl -c var/supervisord.conf status|stop|start NAME` talks to it over
a unix socket in var/. Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO, TextIO
from xmlrpc.client import Error, ServerProxy

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from supervisor.xmlrpc import SupervisorTransport

from radio.embedded import redis_server_args
from radio.models import Role
from radio.services import membership_set, station_ensure_default

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")

# Every program: restarted whenever it exits; a start counts once it ran 1 s, and
# failed starts are retried with a growing delay (1 s, 2 s, 3 s…) practically forever.
# A stop signals the whole process group (celery's pool, uvicorn's workers) and
# kills it after stopwaitsecs. supervisord restarts a program only after the old
# process has exited, so two playback workers never run at once.
PROGRAM_OPTIONS = {
    "autostart": "true",
    "autorestart": "true",
    "startsecs": "1",
    "startretries": "1000",
    "stopsignal": "TERM",
    "stopwaitsecs": "5",
    "stopasgroup": "true",
    "killasgroup": "true",
    "redirect_stderr": "true",
    "stdout_logfile_maxbytes": "10MB",
    "stdout_logfile_backups": "3",
}
# The playback worker releases VLC and its lease on SIGTERM: give it longer.
PLAYBACK_STOP_SECONDS = 10
REDIS_PRIORITY, PROGRAM_PRIORITY = 10, 100  # lower starts first and stops last


def procfile_processes(text: str) -> dict[str, str]:
    """The Procfile's `name: command` lines, in order (blank lines and comments skipped)."""
    processes: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PROCFILE_LINE.match(line.strip())
        if match is None:
            raise CommandError(f"Procfile line not understood: {line!r}")
        processes[match[1]] = match[2].strip()
    return processes


def _ini(value: object) -> str:
    return str(value).replace("%", "%%")  # supervisord expands %(name)s in values


def supervisord_config(*, var_dir: Path, cwd: Path, programs: dict[str, str],
                       redis_command: list[str] | None, password: str) -> str:
    """The supervisord config: programs are Procfile commands run by /bin/sh (as honcho did).

    The control socket is the owner's only (0700) and asks for a password that
    only this file holds: supervisorctl -c reads it from here.
    """
    log_dir = var_dir / "log"
    sock = var_dir / "supervisor.sock"
    credentials = ["username=onair", f"password={_ini(password)}"]
    lines = [
        "; Written by `manage.py run_station` at each start: edit the Procfile, not this.",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",  # its own log is shown by run_station from the logfile
        f"logfile={_ini(log_dir / 'supervisord.log')}",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        "loglevel=info",
        f"pidfile={_ini(var_dir / 'supervisord.pid')}",
        f"childlogdir={_ini(log_dir)}",
        f"directory={_ini(cwd)}",
        "identifier=onair",
        # As root, say so: supervisord otherwise logs a CRIT line at every start.
        *(["user=root"] if os.geteuid() == 0 else []),
        "",
        "[unix_http_server]",
        f"file={_ini(sock)}",
        "chmod=0700",
        *credentials,
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_ini(sock)}",
        *credentials,
    ]

    def program(name: str, command: str, priority: int, **extra: object) -> None:
        lines.extend(["", f"[program:{name}]", f"command={_ini(command)}",
                      f"directory={_ini(cwd)}", f"priority={priority}",
                      f"stdout_logfile={_ini(log_dir / f'{name}.log')}"])
        options = {**PROGRAM_OPTIONS, **extra}
        lines.extend(f"{key}={_ini(value)}" for key, value in options.items())

    if redis_command is not None:
        program("redis", shlex.join(redis_command), REDIS_PRIORITY)
    for name, command in programs.items():
        # `exec`: the program's PID is the process itself, so signals reach it.
        extra = {"stopwaitsecs": PLAYBACK_STOP_SECONDS} if name == "playback" else {}
        program(name, shlex.join(["/bin/sh", "-c", f"exec {command}"]), PROGRAM_PRIORITY, **extra)
    return "\n".join(lines) + "\n"


class LogFollower(threading.Thread):
    """Shows what the supervised processes write, each line prefixed with its name.

    supervisord writes each program's output to `var/log/NAME.log` (so
    `supervisorctl tail NAME` works too); this follows those files, reopening a
    file after supervisord rotates it.
    """

    def __init__(self, log_dir: Path, names: list[str], out: TextIO) -> None:
        super().__init__(name="log-follower", daemon=True)
        self.out = out
        self.width = max(len(n) for n in names)
        self.files = {name: log_dir / f"{name}.log" for name in names}
        self.handles: dict[str, tuple[BinaryIO, int]] = {}
        self.partial: dict[str, bytes] = {}
        # Show only what this run writes, not the previous run's lines.
        self.skip = {name: path.stat().st_size for name, path in self.files.items() if path.exists()}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            self.poll()
        self.poll()
        for name, rest in self.partial.items():
            if rest:
                self.emit(name, rest)

    def poll(self) -> None:
        for name, path in self.files.items():
            try:
                self.follow(name, path)
            except OSError:
                pass  # not created yet, or rotated away between two calls
        self.out.flush()

    def follow(self, name: str, path: Path) -> None:
        if name not in self.handles:
            handle = open(path, "rb")  # noqa: SIM115 - kept open across polls
            handle.seek(self.skip.pop(name, 0))
            self.handles[name] = (handle, os.fstat(handle.fileno()).st_ino)
        handle, inode = self.handles[name]
        self.read(name, handle)
        current = path.stat()
        if current.st_ino != inode or current.st_size < handle.tell():
            # Rotated (or truncated): the old file is complete once renamed, so read
            # what came after the read above, then start on the new file.
            self.read(name, handle)
            handle.close()
            del self.handles[name]
            self.follow(name, path)

    def read(self, name: str, handle: BinaryIO) -> None:
        data = self.partial.pop(name, b"") + handle.read()
        *lines, rest = data.split(b"\n")
        self.partial[name] = rest
        for line in lines:
            self.emit(name, line)

    def emit(self, name: str, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        self.out.write(f"{name:<{self.width}} | {text}\n")


class SupervisorNudger(threading.Thread):
    """Asks supervisord for its state a few times a second, so a dead process is back sooner.

    supervisord reaps a dead child on one turn of its loop and spawns the
    replacement on the next turn, which first waits up to 1 s for I/O: a request
    on its control socket is I/O. A killed playback worker is back on air up to
    ~1 s sooner for a few tiny requests a second.
    """

    def __init__(self, sock: Path, password: str, interval: float = 0.25) -> None:
        super().__init__(name="supervisor-nudger", daemon=True)
        self.sock, self.password, self.interval = sock, password, interval
        self.stopping = threading.Event()

    def run(self) -> None:
        proxy = None
        while not self.stopping.wait(self.interval):
            try:
                proxy = proxy or ServerProxy("http://localhost", transport=SupervisorTransport(
                    "onair", self.password, f"unix://{self.sock}"))
                proxy.supervisor.getState()
            except (OSError, HTTPException, Error):
                proxy = None  # not listening yet, or shutting down: a new connection next time


class Command(BaseCommand):
    help = "Run every OnAir process on this machine under supervisord (embedded default)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--procfile", default=str(settings.BASE_DIR / "Procfile"))

    def handle(self, *args, host: str, port: int, procfile: str, **options) -> None:
        var_dir = settings.VAR_DIR
        (var_dir / "log").mkdir(parents=True, exist_ok=True)
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        conf = var_dir / "supervisord.conf"
        if self.already_running(var_dir / "supervisor.sock"):
            raise CommandError(f"OnAir is already running from {var_dir}: {self.supervisorctl(conf)} status")
        with open(procfile) as handle:
            programs = procfile_processes(handle.read())
        # Only the database is needed before the processes start.
        call_command("migrate", interactive=False, verbosity=0)
        self.ensure_admin()
        connections.close_all()

        redis_command = None
        if settings.EMBEDDED_REDIS:
            (var_dir / "redis").mkdir(exist_ok=True)
            redis_command = redis_server_args(socket_path=settings.REDIS_SOCKET, data_dir=var_dir / "redis")
            self.stdout.write(f"Embedded Redis on {settings.REDIS_SOCKET}")
        password = secrets.token_urlsafe(16)
        conf.touch(mode=0o600)
        conf.chmod(0o600)
        conf.write_text(supervisord_config(var_dir=var_dir, cwd=settings.BASE_DIR, programs=programs,
                                           redis_command=redis_command, password=password))
        names = [*(["redis"] if redis_command else []), *programs]

        env = {**os.environ, "HOST": host, "PORT": str(port),
               "ONAIR_DEFAULT_STATION_SLUG": settings.ONAIR_DEFAULT_STATION_SLUG}
        env.setdefault("PYTHONUNBUFFERED", "1")  # lines show up as they are written
        # Procfile commands name uvicorn, celery and python: find this environment's,
        # also when run as .venv/bin/python without an activated virtualenv.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        url_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        self.stdout.write(self.style.SUCCESS(
            f"OnAir is starting: open http://{url_host}:{port}/ (Ctrl-C stops everything)"
        ))
        self.stdout.write(f"Processes: {', '.join(names)}. One at a time: "
                          f"{self.supervisorctl(conf)} status|stop NAME|start NAME|restart NAME")
        self.stdout.flush()
        self.supervise(conf, env, LogFollower(var_dir / "log", ["supervisord", *names], self.stdout),
                       SupervisorNudger(var_dir / "supervisor.sock", password))
        self.stdout.write("OnAir stopped.")

    def supervise(self, conf: Path, env: dict[str, str], follower: LogFollower,
                  nudger: SupervisorNudger) -> None:
        """Run supervisord in the foreground until it exits; SIGINT, SIGTERM or SIGHUP stop it."""
        stopping = threading.Event()
        supervisor: subprocess.Popen | None = None

        def stop(signum, frame) -> None:
            stopping.set()
            if supervisor is not None and supervisor.poll() is None:
                supervisor.send_signal(signal.SIGTERM)  # one orderly shutdown, Redis last

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        follower.start()
        nudger.start()
        try:
            # Own process group: Ctrl-C in the terminal reaches this command only,
            # never supervisord or its programs (each has a group of its own), so
            # nothing dies behind supervisord's back and the playback worker
            # releases its lease in the orderly stop.
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
                env=env, cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL, process_group=0,
            )
            if stopping.is_set():  # a signal came while it was being started
                supervisor.send_signal(signal.SIGTERM)
            returncode = supervisor.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            nudger.stopping.set()
            follower.stopping.set()
            follower.join(timeout=5)
        if returncode != 0 and not stopping.is_set():
            raise CommandError(f"supervisord exited with code {returncode}; see {conf.parent / 'log'}")

    @staticmethod
    def supervisorctl(conf: Path) -> str:
        """The command line that controls this station, short when run from the checkout."""
        ctl = Path(sys.executable).parent / "supervisorctl"
        here = Path.cwd()
        shown = [str(p.relative_to(here)) if p.is_relative_to(here) else str(p)
                 for p in (ctl if ctl.exists() else Path("supervisorctl"), conf)]
        return f"{shown[0]} -c {shown[1]}"

    @staticmethod
    def already_running(sock: Path) -> bool:
        if not sock.exists():
            return False
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(sock))
            except OSError:
                return False  # a stale socket from a crash: supervisord replaces it
        return True

    def ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("ONAIR_ADMIN_USERNAME", "admin")
        password = os.environ.get("ONAIR_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        membership_set(actor=None, station=station_ensure_default(), user=user, role=Role.ADMIN)
        if generated:
            self.stdout.write(self.style.WARNING(
                f"Created admin account {username!r} with password {password!r} "
                "(shown once: write it down, or set ONAIR_ADMIN_PASSWORD)."
            ))
        else:
            self.stdout.write(f"Created admin account {username!r} (password from ONAIR_ADMIN_PASSWORD).")
