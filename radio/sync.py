"""The one harness every sync run goes through: Drive, Gmail and (later) the calendar.

`sync_run(station=…, source="drive", kind=…, body=…)`:

- a lease per (station, source) — a `WorkerHeartbeat` row claimed with a
  conditional UPDATE (radio.services.lease_acquire) — so two runs of one source
  never overlap; a second caller gets None;
- any run of that source still marked "running" while we hold the lease was left
  by a process that died (killed, out of memory, machine lost): it is closed as
  failed first, so no row stays "running" forever;
- the `SyncRun` row, progress published to the database and to the station's
  clients (`library_sync` messages, throttled to one a second) through `Progress`;
- every error mapped to a run error a person can act on (`sync_error`), and a
  terminal state (ok or failed, finished_at, counts) written whatever happens,
  the lease released.

The body does the work and only raises: it never writes the run's status.
"""

from __future__ import annotations

import errno
import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httplib2
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from googleapiclient.errors import HttpError
from kombu.exceptions import OperationalError as BrokerError

from radio.google import GoogleNotConfigured, error_message, is_quota_exhausted, is_rate_limit
from radio.models import Station, SyncRun, WorkerHeartbeat
from radio.notify import MessageType, station_notify
from radio.services import _owner_is_dead_here, lease_acquire, lease_release, lease_renew, worker_identity

logger = logging.getLogger(__name__)

# Which run kinds share a lease: one running Drive run of a station, whatever its kind.
SOURCE_KINDS: dict[str, tuple[str, ...]] = {
    "drive": (SyncRun.Kind.DRIVE_FULL, SyncRun.Kind.DRIVE_CHANGES, SyncRun.Kind.DRIVE_DOWNLOAD),
    "gmail": (SyncRun.Kind.GMAIL,),
    "calendar": (SyncRun.Kind.CALENDAR,),
}
SOURCE_OF_KIND = {kind: source for source, kinds in SOURCE_KINDS.items() for kind in kinds}

# Access problems: what a person must do, per source.
ACCESS_HINTS = {
    "drive": _lazy("Share the Drive folder with the service account, or reconnect Google in the "
                   "admin (Google connections)."),
    "gmail": _lazy("Reconnect Google in the admin (Google connections) with the Gmail permission, "
                   "or give the service account domain-wide delegation for Gmail."),
    "calendar": _lazy("Share the calendar with the service account, or reconnect Google in the "
                      "admin (Google connections)."),
}

# Transient failures: the task queues the run again after this many seconds.
RETRY_AFTER_RATE_LIMIT = 300.0
RETRY_AFTER_TRANSIENT = 120.0

_NETWORK_ERRORS = (http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout,
                   socket.gaierror, ssl.SSLError, httplib2.HttpLib2Error)
# Other OSErrors (a full disk, a permission) are not the network's fault.
_NETWORK_ERRNOS = {errno.ETIMEDOUT, errno.EPIPE, errno.ECONNABORTED, errno.ECONNREFUSED,
                   errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN}


class SyncNotQueued(Exception):
    """The task queue refused a "sync now" (broker unavailable)."""


# "Sync now" in the admin, without radio importing the apps that sync: each app
# registers how to ask for its sync (library.apps registers Drive).
_SYNC_NOW: dict[str, Callable[..., None]] = {}


def sync_now_register(source: str, request: Callable[..., None]) -> None:
    """`request(station=…, actor=…)` queues a sync of `source` (called from AppConfig.ready)."""
    _SYNC_NOW[source] = request


def sync_now(*, station: Station, actor: Any = None) -> list[str]:
    """Queue a sync of every registered source for the station; the sources queued."""
    for source, request in _SYNC_NOW.items():
        try:
            request(station=station, actor=actor)
        except BrokerError as exc:
            raise SyncNotQueued(f"{source} sync of {station.slug} not queued: {exc}") from exc
    return list(_SYNC_NOW)


# Owners of the runs going on in this process. lease_acquire takes a lease held under
# this process's own PID for a leftover of an earlier life of that PID; a run on
# another thread of this process (threaded Celery pool, a test) is alive, though.
_live_owners: set[str] = set()
_live_lock = threading.Lock()


def _holder_alive(holder: WorkerHeartbeat | None, stale_before) -> bool:
    if holder is None or not holder.owner:
        return False
    if holder.owner in _live_owners:
        return True
    return (holder.beat_at is not None and holder.beat_at >= stale_before
            and not _owner_is_dead_here(holder.owner))


class SyncLeaseLost(Exception):
    """Another process took this run's lease (ours looked dead): stop at once."""


def lease_key(source: str, station: Station) -> str:
    return f"sync:{source}:{station.pk}"


def lease_stale_after() -> float:
    """A run that has not published progress for this long is taken for dead.

    Under Celery a run cannot outlive its hard time limit, so that bounds it.
    """
    return float(settings.CELERY_TASK_TIME_LIMIT) + 60.0


@dataclass
class Progress:
    """Counts and progress of a run; `publish` writes them (throttled) and tells the clients."""

    run: SyncRun
    counts: dict[str, int] = field(default_factory=dict)
    last_sent: float = 0.0
    lease: tuple[str, str] | None = None  # (key, owner), renewed at each publish

    def add(self, name: str, n: int = 1) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n

    def publish(self, *, force: bool = False, **progress: Any) -> None:
        self.run.progress.update(progress)
        now = time.monotonic()
        if not force and now - self.last_sent < 1.0:
            return
        self.last_sent = now
        self.run.counts = dict(self.counts)
        SyncRun.objects.filter(pk=self.run.pk).update(counts=self.run.counts,
                                                      progress=self.run.progress,
                                                      requests=self.run.requests)
        if self.lease is not None and self.run.status == SyncRun.Status.RUNNING:
            key, owner = self.lease
            if not lease_renew(key=key, owner=owner, status={"run": self.run.pk}):
                raise SyncLeaseLost(f"lease {key} was taken over")
        station_notify(self.run.station.slug, MessageType.LIBRARY_SYNC, sync_run_data(self.run))


def sync_run_data(run: SyncRun) -> dict[str, Any]:
    """The `library_sync` message's data (docs/api.md)."""
    return {"run": run.pk, "kind": run.kind, "status": run.status, "counts": run.counts,
            "progress": run.progress, "requests": run.requests, "error": run.error,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None}


def sync_error(exc: BaseException, *, source: str) -> tuple[str, float | None, bool]:
    """(run error, retry after seconds or None, unexpected?) for what stopped a run."""
    if isinstance(exc, GoogleNotConfigured):
        return str(exc), None, False
    if isinstance(exc, HttpError):
        args = {"status": exc.resp.status, "google": error_message(exc)}
        if is_rate_limit(exc):
            return _("Google rate limit (HTTP %(status)s): %(google)s. Google still refused after "
                     "backing off; the sync is tried again later.") % args, RETRY_AFTER_RATE_LIMIT, False
        if is_quota_exhausted(exc):
            return _("Google usage quota exhausted (HTTP %(status)s): %(google)s. Syncs resume when "
                     "the quota resets.") % args, None, False
        if exc.resp.status in (401, 403):
            hint = ACCESS_HINTS.get(source, ACCESS_HINTS["drive"])
            return _("Google refused access (HTTP %(status)s): %(google)s. %(hint)s") % {
                **args, "hint": hint}, None, False
        if exc.resp.status >= 500:
            return _("Google answered HTTP %(status)s after retries: %(google)s") % args, \
                RETRY_AFTER_TRANSIENT, False
        return _("Google answered HTTP %(status)s: %(google)s") % args, None, False
    cause = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, _NETWORK_ERRORS) or (isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS):
        return _("Could not reach Google: the connection failed or was cut (%(cause)s)") % {
            "cause": cause}, RETRY_AFTER_TRANSIENT, False
    if isinstance(exc, SyncLeaseLost):
        return _("Stopped: another process took over this sync (%(cause)s).") % {"cause": exc}, \
            None, False
    if type(exc).__name__ == "SoftTimeLimitExceeded":  # celery's, without importing celery here
        return _("Stopped: the run took longer than its time limit (CELERY_TASK_SOFT_TIME_LIMIT); "
                 "the next run continues from where it stopped."), None, False
    if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: the process is stopping
        return _("Interrupted: the process running the sync stopped (%(cause)s).") % {
            "cause": type(exc).__name__}, None, False
    return _("Unexpected error: %(cause)s") % {"cause": cause}, None, True


INTERRUPTED = _lazy("Interrupted: the process running this sync stopped without finishing it "
                    "(killed, restarted or out of memory).")


def sync_runs_close_stale(*, station: Station | None = None, source: str | None = None) -> int:
    """Close as failed every "running" run whose process is gone. Returns how many.

    A run is alive only while its lease is held by a live owner (beating, not a
    dead process of this host) for that run. Safe to call at any time.
    """
    runs = SyncRun.objects.filter(status=SyncRun.Status.RUNNING)
    if station is not None:
        runs = runs.filter(station=station)
    if source is not None:
        runs = runs.filter(kind__in=SOURCE_KINDS[source])
    now = timezone.now()
    stale_before = now - timedelta(seconds=lease_stale_after())
    closed = 0
    for run in runs.select_related("station"):
        key = lease_key(SOURCE_OF_KIND.get(run.kind, run.kind), run.station)
        holder = WorkerHeartbeat.objects.filter(key=key).first()
        if _holder_alive(holder, stale_before) and (holder.status or {}).get("run") in (None, run.pk):
            continue
        if SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED, error=str(INTERRUPTED), finished_at=now):
            closed += 1
            logger.warning("station=%s sync run=%s (%s) closed as failed: its process is gone",
                           run.station.slug, run.pk, run.kind)
    return closed


def sync_run(*, station: Station, source: str, kind: str, body: Callable[[Progress], None],
             triggered_by_id: int | None = None) -> SyncRun | None:
    """Run `body(progress)` as one sync run of `source`. None when another run holds the lease.

    The body may change `progress.run.kind` (a changes run that turns into a full crawl).
    """
    key, owner = lease_key(source, station), worker_identity()
    with _live_lock:
        holder = WorkerHeartbeat.objects.filter(key=key).first()
        if (holder is not None and holder.owner in _live_owners) or lease_acquire(
                key=key, owner=owner, stale_after=lease_stale_after(), station=station) is None:
            logger.info("station=%s %s sync skipped: another run holds %s", station.slug, source, key)
            return None
        _live_owners.add(owner)
    run = None
    try:
        # We hold the lease: any run of this source still "running" died with its process.
        runs = SyncRun.objects.filter(station=station, kind__in=SOURCE_KINDS[source],
                                      status=SyncRun.Status.RUNNING)
        for stale in runs.values_list("pk", flat=True):
            logger.warning("station=%s sync run=%s closed as failed: its process is gone",
                           station.slug, stale)
        runs.update(status=SyncRun.Status.FAILED, error=str(INTERRUPTED),
                    finished_at=timezone.now())
        run = SyncRun.objects.create(station=station, kind=kind, triggered_by_id=triggered_by_id)
        progress = Progress(run, lease=(key, owner))
        _run_body(run, progress, source, body)
    finally:
        _live_owners.discard(owner)
        try:
            lease_release(key=key, owner=owner)
        except Exception:  # noqa: BLE001 - the lease goes stale on its own; never mask the run
            logger.exception("station=%s lease=%s not released", station.slug, key)
    return run


def _run_body(run: SyncRun, progress: Progress, source: str,
              body: Callable[[Progress], None]) -> None:
    station = run.station
    try:
        progress.publish(force=True)
        body(progress)
        run.status, run.error = SyncRun.Status.OK, ""
    except BaseException as exc:
        message, retry_after, unexpected = sync_error(exc, source=source)
        run.status, run.error, run.retry_after = SyncRun.Status.FAILED, message, retry_after
        if unexpected:
            logger.exception("station=%s %s sync run=%s crashed", station.slug, source, run.pk)
        if not isinstance(exc, Exception):
            _finish(run, progress, source)
            raise  # the process is stopping: let it
    _finish(run, progress, source)


def _finish(run: SyncRun, progress: Progress, source: str) -> None:
    """The terminal state. If even this cannot be written, the next run closes the row."""
    station = run.station
    run.finished_at = timezone.now()
    run.counts = dict(progress.counts)
    for attempt in (1, 2):
        try:
            run.save()
            break
        except Exception:  # noqa: BLE001 - database gone: sync_runs_close_stale mends it later
            if attempt == 2:
                logger.exception("station=%s %s sync run=%s: final state not saved", station.slug,
                                 source, run.pk)
                return
            # The body's error may have left this thread's connection broken: a new one.
            logger.warning("station=%s sync run=%s: final save failed, reconnecting", station.slug,
                           run.pk, exc_info=True)
            connection.close()
    if run.status == SyncRun.Status.FAILED:
        logger.error("station=%s %s sync run=%s failed: %s", station.slug, source, run.pk, run.error)
    else:
        logger.info("station=%s %s sync run=%s ok: %s (%s requests)", station.slug, source, run.pk,
                    run.counts, run.requests)
    try:
        progress.publish(force=True)
    except Exception:  # noqa: BLE001 - a live update only; the row is saved
        logger.warning("station=%s sync run=%s: final progress not sent", station.slug, run.pk,
                       exc_info=True)
