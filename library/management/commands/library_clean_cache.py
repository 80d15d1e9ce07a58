"""`python manage.py library_clean_cache [--dry-run] [--grace SECONDS]`

Removes cached audio, covers and temp files no row refers to any more — the old
content of a file that changed in Drive, a download that died half-way — once
they have been left alone for the grace period (library.services.library_cache_clean).
Beat runs the same every few hours (library.tasks.cache_clean).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from library.services import CACHE_CLEAN_GRACE_SECONDS, library_cache_clean


class Command(BaseCommand):
    help = "Remove cached files no track, cover or Gmail attachment refers to."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="List what would be removed; remove nothing.")
        parser.add_argument("--grace", type=float, default=CACHE_CLEAN_GRACE_SECONDS,
                            help="Leave files touched less than this many seconds ago "
                                 f"(default {CACHE_CLEAN_GRACE_SECONDS:.0f}: downloads in progress, "
                                 "files a playback worker may still hold).")

    def handle(self, *args, dry_run: bool, grace: float, verbosity: int, **options) -> None:
        if grace < 0:
            raise CommandError("--grace must be 0 or more seconds.")
        result = library_cache_clean(dry_run=dry_run, grace=grace)
        verb = "would remove" if dry_run else "removed"
        if verbosity > 1 or dry_run:
            for rel in result["removed"]:
                self.stdout.write(f"{verb} {rel}")
        self.stdout.write(f"{verb} {len(result['removed'])} file(s), {result['bytes']} bytes; "
                          f"kept {result['kept_recent']} recent unreferenced file(s)")
