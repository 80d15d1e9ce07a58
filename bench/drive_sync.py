"""Drive sync benchmark: full-crawl rate and incremental-sync time against library size.

Runs the real sync code and the real google-api-python-client against the local
fake Drive (tests/fakes/), on a private PostgreSQL and Redis started here.
Downloads are excluded: the files carry metadata only.

    uv run python bench/drive_sync.py [--sizes 10000 100000] [--changes 10]

The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--files-per-folder", type=int, default=50)
    args = parser.parse_args()

    from tests.servers import PostgresServer, RedisServer

    postgres, redis_server = PostgresServer(), RedisServer()
    os.environ["DATABASE_URL"] = postgres.start().rsplit("/", 1)[0] + "/postgres"
    os.environ["REDIS_URL"] = redis_server.start()
    os.environ.update(DJANGO_SETTINGS_MODULE="settings.base", SECRET_KEY="bench-" + "x" * 50,
                      ALLOWED_HOSTS="localhost", ONAIR_VAR_DIR=tempfile.mkdtemp(prefix="onair-bench-"),
                      ONAIR_TOKEN_KEY="7m0n7z4oGxN3n7oO3b0yQy3TQw6Q2bQ5cJ8Wb2a2dXM=", LOG_LEVEL="WARNING",
                      DB_CONN_MAX_AGE="0")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        results = [bench_size(size, args.changes, args.files_per_folder) for size in args.sizes]
    finally:
        redis_server.stop()
        postgres.stop()
    figures = {"benchmark": "drive_sync", "changes": args.changes, "results": results}
    print(json.dumps(figures))


def bench_size(size: int, changes: int, per_folder: int) -> dict:
    from django.conf import settings

    from library.drive import Drive, Syncer
    from library.models import DriveFolder, Track
    from radio.google import google_service
    from radio.models import Station, SyncRun
    from radio.sync import Progress
    from tests.fakes.google import FakeGoogle

    fake = FakeGoogle().start()
    settings.GOOGLE_API_ENDPOINT = fake.url
    fake.allow_token("bench-token")
    from google.oauth2.credentials import Credentials

    station = Station.objects.create(name=f"Bench {size}", slug=f"bench-{size}")
    root = fake.drive.add_folder("Library")
    DriveFolder.objects.create(station=station, folder_id=root, is_root=True)
    songs = fake.drive.add_folder("Songs", root)
    genres = [fake.drive.add_folder(f"Genre {g}", songs) for g in range(20)]
    folder = None
    ids = []
    t0 = time.perf_counter()
    for i in range(size):
        if i % per_folder == 0:
            folder = fake.drive.add_folder(f"Artist {i // per_folder}", genres[(i // per_folder) % 20])
        ids.append(fake.drive.add_metadata_file(f"Song {i}.mp3", folder, md5=f"{i:032x}", size=4_000_000))
    setup_s = time.perf_counter() - t0

    def syncer() -> tuple[Syncer, SyncRun]:
        run = SyncRun.objects.create(station=station, kind=SyncRun.Kind.DRIVE_FULL)
        service = google_service("drive", "v3", Credentials(token="bench-token"))
        return Syncer(station, Drive(service, run), Progress(run)), run

    crawler, run = syncer()
    requests_before = len(fake.requests)
    t0 = time.perf_counter()
    crawler.full_crawl()
    crawl_s = time.perf_counter() - t0
    crawl_requests = len(fake.requests) - requests_before
    assert Track.objects.filter(station=station).count() == size

    # A handful of changes: renames, moves, trashes, additions, content changes.
    for n in range(changes):
        target = ids[(n * 7919) % size]
        action = n % 5
        if action == 0:
            fake.drive.rename(target, f"Renamed {n}.mp3")
        elif action == 1:
            fake.drive.move(target, genres[(n + 1) % 20])
        elif action == 2:
            fake.drive.trash(target)
        elif action == 3:
            fake.drive.add_metadata_file(f"New {n}.mp3", genres[n % 20], md5=f"{size + n:032x}", size=1)
        else:
            fake.drive.set_content(target, b"new content %d" % n)
    from radio.models import SyncCursor

    token = SyncCursor.objects.get(station=station, source="drive").token
    # Timed from building the client (discovery document, folder tree from the
    # database) to the committed token: everything but downloads.
    requests_before = len(fake.requests)
    t0 = time.perf_counter()
    incremental, run = syncer()
    incremental.apply_changes(token)
    incremental_s = time.perf_counter() - t0
    incremental_requests = len(fake.requests) - requests_before
    incremental_drive_calls = sum(1 for r in fake.requests[requests_before:] if r.path.startswith("/drive/"))
    assert Track.objects.filter(station=station, missing_since__isnull=False).count() == changes // 5
    fake.stop()
    result = {
        "files": size,
        "fake_setup_s": round(setup_s, 2),
        "full_crawl_s": round(crawl_s, 2),
        "full_crawl_files_per_s": round(size / crawl_s),
        "full_crawl_requests": crawl_requests,
        "incremental_changes": changes,
        "incremental_s": round(incremental_s, 3),
        "incremental_http_requests": incremental_requests,
        "incremental_drive_api_calls": incremental_drive_calls,
    }
    print(f"{size:>7} files: full crawl {crawl_s:.1f} s ({size / crawl_s:.0f} files/s, "
          f"{crawl_requests} requests); {changes} changes in {incremental_s * 1000:.0f} ms "
          f"({incremental_drive_calls} Drive API calls, {incremental_requests} HTTP requests)", flush=True)
    return result


if __name__ == "__main__":
    main()
