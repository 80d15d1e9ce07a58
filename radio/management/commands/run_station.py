"""`python manage.py run_station`: the whole station on one machine (what `make run` calls).

Starts the embedded Redis unless REDIS_URL is set, migrates, makes sure an admin
account exists, then runs the Procfile's processes under honcho. Ctrl-C stops
everything it started.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from radio.embedded import redis_start, redis_stop
from radio.models import Role
from radio.services import membership_set, station_ensure_default


class Command(BaseCommand):
    help = "Run every OnAir process on this machine (embedded default)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--procfile", default=str(settings.BASE_DIR / "Procfile"))

    def handle(self, *args, host: str, port: int, procfile: str, **options) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        redis_process = None
        if settings.EMBEDDED_REDIS:
            redis_process = redis_start(socket_path=settings.REDIS_SOCKET,
                                        data_dir=settings.VAR_DIR / "redis")
            self.stdout.write(f"Embedded Redis on {settings.REDIS_SOCKET}")
        try:
            call_command("migrate", interactive=False, verbosity=0)
            self.ensure_admin()
            connections.close_all()
            with open(procfile) as handle:
                processes = parse_procfile(handle.read()).processes
            manager = Manager(Printer(sys.stdout))
            env = {**os.environ, "HOST": host, "PORT": str(port),
                   "ONAIR_DEFAULT_STATION_SLUG": settings.ONAIR_DEFAULT_STATION_SLUG}
            for name, cmd in processes.items():
                manager.add_process(name, cmd, env=env, cwd=str(settings.BASE_DIR))
            url_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
            self.stdout.write(self.style.SUCCESS(
                f"OnAir is starting: open http://{url_host}:{port}/ (Ctrl-C stops everything)"
            ))
            manager.loop()
        finally:
            if redis_process is not None:
                redis_stop(redis_process)

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
