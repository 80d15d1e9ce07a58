"""The sync-run harness (radio/sync.py): one lease per source, a terminal state whatever happens.

Google's errors through the real client: tests/library/test_sync_errors.py.
"""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from radio.models import SyncRun, WorkerHeartbeat
from radio.sync import Progress, lease_key, sync_run, sync_runs_close_stale

pytestmark = pytest.mark.django_db


def dead_owner() -> str:
    """The lease owner of a process of this host that no longer exists (killed)."""
    return f"{socket.gethostname()}:4194303:deadbeef"


def crashed_run(station, *, owner: str, beat_age: float = 0.0) -> SyncRun:
    """A Drive run whose process died mid-way: its row says running, its lease is still held."""
    run = SyncRun.objects.create(station=station, kind=SyncRun.Kind.DRIVE_CHANGES)
    beat = timezone.now() - timedelta(seconds=beat_age)
    WorkerHeartbeat.objects.update_or_create(key=lease_key("drive", station), defaults={
        "owner": owner, "station": station, "started_at": beat, "beat_at": beat,
        "status": {"run": run.pk}})
    return run


def test_a_run_that_died_hard_is_closed_by_the_next_run(station):
    crashed = crashed_run(station, owner=dead_owner())
    run = sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL,
                   body=lambda progress: None)
    assert run is not None and run.status == SyncRun.Status.OK
    crashed.refresh_from_db()
    assert crashed.status == SyncRun.Status.FAILED and crashed.finished_at is not None
    assert "Interrupted" in crashed.error


def test_a_run_on_another_host_is_taken_for_dead_only_when_its_lease_is_stale(station, settings):
    live = crashed_run(station, owner="studio-2:17:cafe")
    assert sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL,
                    body=lambda progress: None) is None
    live.refresh_from_db()
    assert live.status == SyncRun.Status.RUNNING  # it may well be working

    WorkerHeartbeat.objects.filter(key=lease_key("drive", station)).update(
        beat_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120))
    assert sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL,
                    body=lambda progress: None).status == SyncRun.Status.OK
    live.refresh_from_db()
    assert live.status == SyncRun.Status.FAILED


def test_two_runs_of_one_source_never_overlap_but_other_sources_do(station):
    inner: list[SyncRun | None] = []

    def body(progress: Progress) -> None:
        inner.append(sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL,
                              body=lambda p: None))
        inner.append(sync_run(station=station, source="gmail", kind=SyncRun.Kind.GMAIL,
                              body=lambda p: None))

    outer = sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL, body=body)
    assert outer.status == SyncRun.Status.OK
    assert inner[0] is None and inner[1].status == SyncRun.Status.OK
    # Released when done: the next run gets the lease.
    assert WorkerHeartbeat.objects.get(key=lease_key("drive", station)).owner == ""
    assert sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL,
                    body=lambda p: None) is not None


def test_startup_closes_running_rows_whose_process_is_gone(station, other_station):
    dead = crashed_run(station, owner=dead_owner())
    alive = crashed_run(other_station, owner="studio-2:17:cafe")  # another host, beating
    orphan = SyncRun.objects.create(station=station, kind=SyncRun.Kind.GMAIL)  # no lease at all
    assert sync_runs_close_stale() == 2
    for run, status in ((dead, "failed"), (alive, "running"), (orphan, "failed")):
        run.refresh_from_db()
        assert run.status == status, run


def test_unexpected_error_is_a_failed_run_with_its_cause_logged(station, caplog):
    def body(progress: Progress) -> None:
        progress.add("added", 3)
        raise ValueError("a bug")

    with caplog.at_level(logging.ERROR, logger="radio.sync"):
        run = sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL, body=body)
    run.refresh_from_db()
    assert (run.status, run.error, run.counts) == (SyncRun.Status.FAILED,
                                                   "Unexpected error: ValueError: a bug", {"added": 3})
    assert any(r.exc_info and "crashed" in r.getMessage() for r in caplog.records)


def test_a_process_stopping_mid_run_still_leaves_a_terminal_state(station):
    def body(progress: Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync_run(station=station, source="gmail", kind=SyncRun.Kind.GMAIL, body=body)
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED and run.finished_at is not None
    assert "Interrupted" in run.error and "KeyboardInterrupt" in run.error
    assert WorkerHeartbeat.objects.get(key=lease_key("gmail", station)).owner == ""


def test_a_run_whose_lease_was_taken_over_stops(station):
    def body(progress: Progress) -> None:
        # Another process judged this run dead and took the lease.
        WorkerHeartbeat.objects.filter(key=lease_key("drive", station)).update(owner="other:1:x")
        progress.publish(force=True)
        raise AssertionError("publish must stop the run")

    run = sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL, body=body)
    assert run.status == SyncRun.Status.FAILED and "another process took over" in run.error
    # Its lease belongs to the other process: not released by us.
    assert WorkerHeartbeat.objects.get(key=lease_key("drive", station)).owner == "other:1:x"


def test_a_celery_worker_starting_closes_runs_left_running(station):
    from celery.signals import worker_ready

    import radio.tasks  # noqa: F401 - connects the handler, as the worker's autodiscovery does

    dead = crashed_run(station, owner=dead_owner())
    worker_ready.send(sender=None)
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.FAILED and "Interrupted" in dead.error


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_database_connection_dies_still_records_its_end(station):
    from django.db import connection

    def body(progress: Progress) -> None:
        with connection.cursor() as cursor:  # the server drops this connection
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    run = sync_run(station=station, source="drive", kind=SyncRun.Kind.DRIVE_FULL, body=body)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and run.finished_at is not None
    assert WorkerHeartbeat.objects.get(key=lease_key("drive", station)).owner == ""
