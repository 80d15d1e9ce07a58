"""`python manage.py healthcheck [--part NAME]`: the /healthz report from the shell.

Exits 0 when everything (or the named part: database, redis, celery,
playback:<slug>) is up, 1 otherwise. docker-compose's health checks call it.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from radio.health import health_report


class Command(BaseCommand):
    help = "Print the health report; exit 1 if the station (or --part) is down."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--part", help="only this part, e.g. celery or playback:main")

    def handle(self, *args, part: str | None, **options) -> None:
        report = health_report()
        self.stdout.write(json.dumps(report, indent=2))
        down = report["down"]
        if part is not None:
            known = {"database", "redis", "celery",
                     *(f"playback:{slug}" for slug in report["checks"]["playback"])}
            if part not in known:
                raise CommandError(f"Unknown part {part!r}; known: {', '.join(sorted(known))}.")
            down = [name for name in down if name == part]
        if down:
            raise CommandError(f"Down: {', '.join(down)}", returncode=1)
