"""Playback rules shared by the API, pages, admin and the playback worker.

Writes go through these functions: they change the database (the source of
truth) and then nudge the worker and the station's WebSocket clients.
"""

from __future__ import annotations

import copy
import csv
import logging
import time
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Q, Value, When
from django.utils import dateformat, timezone, translation
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy, ngettext

from library.models import Track
from playback.models import EmergencyTrack, PlayerCommand, PlayerState, PlayLog, QueueItem, Reason
from radio.models import Notification, Station
from radio.notify import MessageType, channel_send, station_notify
from radio.services import audit_record, heartbeat_age, lease_holder, notification_post

logger = logging.getLogger(__name__)


class QueueError(Exception):
    """A queue change that cannot be made (e.g. an unplayable track)."""


def playback_lease_key(station: Station | str) -> str:
    slug = station if isinstance(station, str) else station.slug
    return f"playback:{slug}"


def worker_channel(station: Station | str) -> str:
    slug = station if isinstance(station, str) else station.slug
    return f"playback.{slug}"


def worker_nudge(station: Station) -> None:
    """Wake the worker. Only a nudge: it also polls, so a lost message loses nothing."""
    channel_send(worker_channel(station), {"type": "nudge"})


# --- Queue --------------------------------------------------------------------

def queue_items(station: Station):
    return (QueueItem.objects.filter(station=station).select_related("track", "requested_by")
            .order_by("position", "id"))


def queue_data(station: Station) -> list[dict[str, Any]]:
    return [queue_item_data(item) for item in queue_items(station)]


def queue_item_data(item: QueueItem) -> dict[str, Any]:
    track = item.track
    return {"id": item.pk, "position": item.position, "status": item.status, "reason": item.reason,
            "requested_by": item.requested_by.get_username() if item.requested_by else None,
            "note": item.note, "track": track_brief(track)}


def track_brief(track: Track | None) -> dict[str, Any] | None:
    if track is None:
        return None
    return {"id": track.pk, "title": track.title, "artist": track.artist, "kind": track.kind,
            "duration": track.duration, "cue_in": track.cue_in, "cue_out": track.cue_out}


def _changed(station: Station, *, nudge: bool = True) -> None:
    """After a committed queue change: tell clients (the whole queue, read once for every
    socket) and wake the worker, unless the worker made the change."""
    slug = station.slug

    def send() -> None:
        station_notify(slug, MessageType.QUEUE_UPDATE, {"queue": queue_data(station)})
        if nudge:
            worker_nudge(station)

    # robust: the change is committed; a failed read for the live update is logged, never raised
    # into the caller (the worker's write-behind would run its job again).
    transaction.on_commit(send, robust=True)


def _check_playable(station: Station, track: Track) -> None:
    if track.station_id != station.pk:
        raise QueueError("This track belongs to another station.")
    if not track.is_playable:
        reason = ("disabled" if not track.enabled else "missing from its source" if track.missing_since
                  else f"not playable ({track.analysis_error or track.get_analysis_display()})"
                  if track.analysis != Track.Analysis.OK else "not downloaded yet")
        raise QueueError(f"“{track}” cannot go on air: {reason}.")


class QueueItemGone(QueueError):
    """The item is no longer in the queue: someone removed it, or it has played."""


def _queue_lock(station: Station) -> None:
    """Hold the station's queue until the transaction ends. Call it first, inside `transaction.atomic`.

    Every change to a station's queue (API, pages, admin, auto-DJ, the playback worker) takes
    this one lock before it reads positions, so two operators never number from the same
    state (concurrent appends used to write duplicate positions). It is one row, the same one
    for every change and always taken first, so no lock-order deadlock is possible. NO KEY
    UPDATE rather than UPDATE: inserting rows that merely point at the station (commands,
    as-run rows, audit entries) is never held up by it. SQLite ignores row locks; there the
    IMMEDIATE transactions (settings) already let one writer in at a time.
    """
    list(Station.objects.select_for_update(no_key=True).filter(pk=station.pk).values_list("pk", flat=True))


def _queue_rows(station: Station) -> list[tuple[int, int, str]]:
    """(id, position, status) of every item, in play order: what is on air first, then by position."""
    rows = QueueItem.objects.filter(station=station).values_list("pk", "position", "status")
    return sorted(rows, key=lambda row: (row[2] != QueueItem.Status.PLAYING, row[1], row[0]))


def _queue_number(station: Station, order: list[int], rows: list[tuple[int, int, str]]) -> None:
    """Positions 0..n-1 in the order of `order` (every item of the queue): dense and unique.

    Only the items whose position changes are written, in two UPDATEs so that no two rows
    share a position on the way (the unique constraint is checked row by row): first to
    distinct negative numbers, then to their places.
    """
    current = {pk: position for pk, position, _ in rows}
    moves = {pk: index for index, pk in enumerate(order) if current.get(pk) != index}
    if not moves:
        return
    items = QueueItem.objects.filter(station=station, pk__in=list(moves))
    items.update(position=Case(*(When(pk=pk, then=Value(-1 - index)) for pk, index in moves.items()),
                               output_field=IntegerField()))
    items.update(position=-1 - F("position"))


def _queue_renumber(station: Station) -> None:
    rows = _queue_rows(station)
    _queue_number(station, [pk for pk, _, _ in rows], rows)


def _queue_add(station: Station, *, next_up: bool, **fields: Any) -> QueueItem:
    """A new item at the end, or right after what is on air; the caller holds the lock."""
    rows = _queue_rows(station)
    free = max((position for _, position, _ in rows), default=-1) + 1
    item = QueueItem.objects.create(station=station, position=free, **fields)
    order = [pk for pk, _, _ in rows]
    at = sum(1 for row in rows if row[2] == QueueItem.Status.PLAYING) if next_up else len(order)
    order.insert(at, item.pk)
    _queue_number(station, order, [*rows, (item.pk, free, item.status)])
    item.position = at
    return item


def _queue_gone() -> QueueItemGone:
    return QueueItemGone(gettext("This item is no longer in the queue: someone removed it, or it has "
                                 "already played. Reload the queue."))


def queue_append(*, station: Station, track: Track, reason: str = Reason.MANUAL, actor=None,
                 note: str = "") -> QueueItem:
    _check_playable(station, track)
    with transaction.atomic():
        _queue_lock(station)
        item = _queue_add(station, next_up=False, track=track, reason=reason, note=note,
                          requested_by=_user(actor))
        _audit(actor, station, "queue.append", item)
        _changed(station)
    return item


def queue_insert_next(*, station: Station, track: Track, reason: str = Reason.MANUAL, actor=None,
                      note: str = "") -> QueueItem:
    """Right after what is on air (ahead of every queued item)."""
    _check_playable(station, track)
    with transaction.atomic():
        _queue_lock(station)
        item = _queue_add(station, next_up=True, track=track, reason=reason, note=note,
                          requested_by=_user(actor))
        _audit(actor, station, "queue.insert_next", item)
        _changed(station)
    return item


def queue_move(*, item: QueueItem, to_index: int, actor=None) -> QueueItem:
    """Move a queued item to `to_index` among the queued items (0 = next). Returns it as moved.

    QueueItemGone when it is no longer in the queue (a concurrent remove, or it played).
    """
    station = item.station
    with transaction.atomic():
        _queue_lock(station)
        rows = _queue_rows(station)
        status = next((row[2] for row in rows if row[0] == item.pk), None)
        if status is None:
            raise _queue_gone()
        if status != QueueItem.Status.QUEUED:
            raise QueueError(gettext("The item on air cannot be moved."))
        on_air = [pk for pk, _, s in rows if s == QueueItem.Status.PLAYING]
        queued = [pk for pk, _, s in rows if s != QueueItem.Status.PLAYING and pk != item.pk]
        to_index = max(0, min(to_index, len(queued)))
        queued.insert(to_index, item.pk)
        _queue_number(station, on_air + queued, rows)
        item = queue_items(station).get(pk=item.pk)
        _audit(actor, station, "queue.move", item, {"to_index": to_index})
        _changed(station)
    return item


def queue_remove(*, item: QueueItem, actor=None) -> None:
    """QueueItemGone when it is no longer in the queue; QueueError for the item on air."""
    station = item.station
    with transaction.atomic():
        _queue_lock(station)
        current = QueueItem.objects.filter(pk=item.pk, station=station).first()
        if current is None:
            raise _queue_gone()
        if current.status == QueueItem.Status.PLAYING:
            raise QueueError(gettext("The item on air cannot be removed: skip it instead."))
        _audit(actor, station, "queue.remove", current)
        current.delete()
        _queue_renumber(station)
        _changed(station)


def queue_clear(*, station: Station, actor=None) -> int:
    with transaction.atomic():
        _queue_lock(station)
        count, _ = QueueItem.objects.filter(station=station, status=QueueItem.Status.QUEUED).delete()
        _queue_renumber(station)
        audit_record(actor=actor, station=station, action="queue.clear", obj=station,
                     after={"removed": count})
        _changed(station)
    return count


# The playback worker's own queue writes (on its backstage thread, never the on-air one). They
# take the same lock and send a queue_update (the status messages do not carry the queue).

def queue_item_started(*, station: Station, item_id: int) -> bool:
    """The worker put the item on air: it is marked playing and listed first. False if it is gone."""
    with transaction.atomic():
        _queue_lock(station)
        if not QueueItem.objects.filter(pk=item_id, station=station).update(status=QueueItem.Status.PLAYING):
            return False
        _queue_renumber(station)
        _changed(station, nudge=False)
    return True


def queue_item_done(*, station: Station, item_id: int) -> bool:
    """The item has played (or could not): off the queue. False if it was already gone."""
    with transaction.atomic():
        _queue_lock(station)
        deleted, _ = QueueItem.objects.filter(pk=item_id, station=station).delete()
        if deleted:
            _queue_renumber(station)
            _changed(station, nudge=False)
    return bool(deleted)


def queue_drop_playing(*, station: Station) -> int:
    """After a worker restart: what was on air is off the queue (it was logged as interrupted)."""
    with transaction.atomic():
        _queue_lock(station)
        deleted, _ = QueueItem.objects.filter(station=station, status=QueueItem.Status.PLAYING).delete()
        if deleted:
            _queue_renumber(station)
    return deleted


def _user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _audit(actor, station: Station, action: str, item: QueueItem, extra: dict | None = None) -> None:
    if _user(actor) is not None:
        audit_record(actor=actor, station=station, action=action, obj=item,
                     after={"track": item.track_id, "position": item.position, **(extra or {})})


# --- Transport commands ------------------------------------------------------------

def command_issue(*, station: Station, action: str, args: dict[str, Any] | None = None,
                  actor=None) -> PlayerCommand:
    """Store the intent, then nudge the worker (which also polls for pending commands)."""
    with transaction.atomic():
        command = PlayerCommand.objects.create(station=station, action=action, args=args or {},
                                               requested_by=_user(actor))
        if _user(actor) is not None:
            audit_record(actor=actor, station=station, action=f"player.{action}", obj=command,
                         after={"args": command.args})
        transaction.on_commit(lambda: worker_nudge(station))
    return command


def play_now(*, station: Station, track: Track, actor=None) -> PlayerCommand:
    """Interrupt what is on air (short fade) with `track`."""
    _check_playable(station, track)
    with transaction.atomic():
        item = queue_insert_next(station=station, track=track, actor=actor)
        return command_issue(station=station, action=PlayerCommand.Action.PLAY_NOW,
                             args={"queue_item": item.pk}, actor=actor)


def commands_pending(station: Station):
    return PlayerCommand.objects.filter(station=station, status=PlayerCommand.Status.PENDING).order_by(
        "created_at", "id")


def commands_take(*, station: Station, max_age: float, now: datetime | None = None) -> list[PlayerCommand]:
    """The pending commands the worker should apply now, oldest first.

    A command that waited more than `max_age` seconds is expired instead of applied (a
    Skip pressed while the worker was down must not fire when it comes back), and the
    operators are told. Each command is expired or finished once: conditional UPDATEs.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=max_age)
    stale = list(commands_pending(station).filter(created_at__lt=cutoff))
    if stale:
        _commands_expire(station, stale, max_age=max_age, now=now)
    return list(commands_pending(station).filter(created_at__gte=cutoff))


def _commands_expire(station: Station, commands: list[PlayerCommand], *, max_age: float,
                     now: datetime) -> list[PlayerCommand]:
    seconds = f"{max_age:g}"
    with translation.override(station.language):
        result = gettext("expired: the playback worker did not apply it within %(seconds)s s") % {
            "seconds": seconds}
    expired = [command for command in commands
               if PlayerCommand.objects.filter(pk=command.pk, status=PlayerCommand.Status.PENDING)
               .update(status=PlayerCommand.Status.EXPIRED, result=result[:300], handled_at=now) == 1]
    for command in expired:
        logger.warning("station=%s command=%s %s expired: pending for %.1f s", station.slug, command.pk,
                       command.action, (now - command.created_at).total_seconds())
    if not expired:
        return []
    zone = zoneinfo.ZoneInfo(station.time_zone)
    today = now.astimezone(zone).date()

    def pressed(command: PlayerCommand) -> str:
        local = command.created_at.astimezone(zone)
        return dateformat.format(local, "H:i:s" if local.date() == today else "Y-m-d H:i")

    with translation.override(station.language):
        if len(expired) == 1:
            message = gettext("“%(action)s”, pressed at %(time)s, was not applied: the playback worker "
                              "did not take it within %(seconds)s s.") % {
                "action": expired[0].get_action_display(), "time": pressed(expired[0]), "seconds": seconds}
        else:
            message = ngettext(
                "%(count)d command, pressed between %(first)s and %(last)s, was not applied: the "
                "playback worker did not take it within %(seconds)s s (%(actions)s).",
                "%(count)d commands, pressed between %(first)s and %(last)s, were not applied: the "
                "playback worker did not take them within %(seconds)s s (%(actions)s).",
                len(expired)) % {
                "count": len(expired), "first": pressed(expired[0]), "last": pressed(expired[-1]),
                "seconds": seconds, "actions": ", ".join(
                    [str(c.get_action_display()) for c in expired[:8]] + (["…"] if len(expired) > 8 else []))}
    notification_post(station=station, message=message[:500], level=Notification.Level.WARNING,
                      source="playback")
    return expired


def command_finish(command: PlayerCommand, *, ok: bool, result: str = "") -> bool:
    """Record what the worker did. False when the command was no longer pending (e.g. expired)."""
    return PlayerCommand.objects.filter(pk=command.pk, status=PlayerCommand.Status.PENDING).update(
        status=PlayerCommand.Status.DONE if ok else PlayerCommand.Status.FAILED,
        result=result[:300], handled_at=timezone.now()) == 1


# --- As-run log --------------------------------------------------------------------

def playlog_write(entries: list[dict[str, Any]]) -> int:
    """Write as-run rows (idempotent on uid) and bump the tracks' play counts."""
    written = 0
    for entry in entries:
        with transaction.atomic():
            log, created = PlayLog.objects.get_or_create(uid=entry["uid"], defaults=entry)
            if not created:
                for key in ("ended_at", "played_seconds", "outcome", "failure_reason"):
                    setattr(log, key, entry.get(key, getattr(log, key)))
                log.save()
                continue
            written += 1
            if entry["outcome"] in (PlayLog.Outcome.COMPLETED, PlayLog.Outcome.SKIPPED,
                                    PlayLog.Outcome.INTERRUPTED):
                Track.objects.filter(pk=entry["track_id"]).update(
                    play_count=F("play_count") + 1, last_played_at=entry["started_at"])
    return written


def playlog_history(station: Station):
    """The station's as-run log, newest first."""
    return PlayLog.objects.filter(station=station).select_related("requested_by")


PLAYLOG_CSV_COLUMNS = ["started_at", "ended_at", "played_seconds", "title", "artist", "kind", "outcome",
                       "failure_reason", "reason", "requested_by", "note"]
# A spreadsheet runs a cell that starts like a formula (CSV injection): such text gets a leading '.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _text_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _utc_iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def playlog_csv_row(log: PlayLog) -> list[str]:
    return [_utc_iso(log.started_at), _utc_iso(log.ended_at), f"{log.played_seconds:.2f}",
            _text_cell(log.title), _text_cell(log.artist), log.kind, log.outcome,
            _text_cell(log.failure_reason), log.reason,
            _text_cell(log.requested_by.get_username()) if log.requested_by else "", _text_cell(log.note)]


def playlog_csv_lines(queryset, *, chunk_size: int = 2000) -> Iterator[str]:
    """The as-run rows as CSV lines, header first, read from the database in chunks."""
    writer = csv.writer(_Echo())
    yield writer.writerow(PLAYLOG_CSV_COLUMNS)
    for log in queryset.select_related("requested_by").iterator(chunk_size=chunk_size):
        yield writer.writerow(playlog_csv_row(log))


# --- Auto-DJ ----------------------------------------------------------------------
# Auto-DJ's rules (no repeat within the station's window, no artist twice in a row) give
# way, least recently played first, rather than let the station fall silent; the rule
# that gave way is noted on the queue item, for the operators.

NOTE_NO_REPEAT_RELAXED = gettext_lazy("no-repeat window relaxed")
NOTE_SEPARATION_RELAXED = gettext_lazy("artist separation relaxed")


def playable_tracks(station: Station, kind: str = Track.Kind.SONG):
    return Track.objects.filter(station=station, kind=kind).playable()


def autodj_candidates(station: Station, *, now: datetime | None = None, limit: int = 200) -> list[Track]:
    """Playable songs for auto-DJ, least recently played first, at most `limit`.

    Songs not aired within the station's no-repeat window come first (`autodj_note` "").
    When they are fewer than one top-up may need (the station's queue depth), the other
    playable songs follow, least recently played first, noted NOTE_NO_REPEAT_RELAXED.
    Queued songs are left out, unless nothing else can play at all.
    """
    if limit <= 0:
        return []
    now = now or timezone.now()
    since = now - timedelta(hours=station.no_repeat_hours)
    songs = playable_tracks(station)
    queued = QueueItem.objects.filter(station=station).values("track_id")
    least_recent = F("last_played_at").asc(nulls_first=True)  # never played = least recent
    fresh = list(songs.filter(Q(last_played_at__isnull=True) | Q(last_played_at__lt=since))
                 .exclude(pk__in=queued).order_by(least_recent, "?")[:limit])
    for track in fresh:
        track.autodj_note = ""
    if len(fresh) >= max(1, min(limit, station.queue_min_depth)):
        return fresh
    relaxed = list(songs.filter(last_played_at__gte=since).exclude(pk__in=queued)
                   .order_by(least_recent, "id")[:limit - len(fresh)])
    if not fresh and not relaxed:
        # Every playable song is already queued (a one-song library): repeat, not dead air.
        relaxed = list(songs.order_by(least_recent, "id")[:limit])
    for track in relaxed:
        track.autodj_note = NOTE_NO_REPEAT_RELAXED
    return fresh + relaxed


def _last_played_key(track: Any) -> tuple:
    played = getattr(track, "last_played_at", None)
    return (0,) if played is None else (1, played)


def _repeat_tier(track: Any) -> int:
    """0 for a song outside the no-repeat window, 1 for one inside it (NOTE_NO_REPEAT_RELAXED)."""
    return 0 if not getattr(track, "autodj_note", "") else 1


def _notes_join(first: str, second: str) -> str:
    if not first or not second:
        return first or second
    return format_lazy("{}; {}", first, second)


def _separable_after(pool: list, indices: list[int], pick: int) -> bool:
    """Whether the candidates `indices` less `pick` can still be ordered with no artist twice in a row,
    starting after `pick`'s artist (songs without an artist count as all different)."""
    counts = Counter(pool[i].artist.casefold() for i in indices if i != pick and pool[i].artist)
    rest = len(indices) - 1
    first = (pool[pick].artist or "").casefold()
    return all(n <= (rest // 2 if artist == first else (rest + 1) // 2) for artist, n in counts.items())


def autodj_choose(candidates: list[Track], *, previous_artist: str, count: int) -> list[Track]:
    """Pick up to `count` candidates in their order, never an artist twice in a row while
    another is left; when none is, the least recently played one goes anyway. Songs outside the
    no-repeat window go first: a song repeat is worse than an artist twice in a row.

    A pure rule (no database) that the worker also runs on its in-memory pool: it needs
    only `artist` and, if present, `last_played_at` and `autodj_note`. Each pick comes back
    as a copy whose `autodj_note` adds NOTE_SEPARATION_RELAXED when that rule gave way;
    the candidates themselves are left as they were.
    """
    chosen: list[Track] = []
    last = (previous_artist or "").casefold()
    pool = list(candidates)
    while pool and len(chosen) < count:
        # A song heard within the no-repeat window is the worse fault: while songs outside it are
        # left, the pick is one of them, by the same artist again if need be.
        tier = min(_repeat_tier(t) for t in pool)
        indices = [i for i, t in enumerate(pool) if _repeat_tier(t) == tier]
        allowed = [i for i in indices if not pool[i].artist or pool[i].artist.casefold() != last]
        # In order, but never a pick that leaves the rest of the tier impossible to separate (two songs
        # of one artist as its last two): the first pick after which the rest can still alternate.
        index = next((i for i in allowed if _separable_after(pool, indices, i)),
                     allowed[0] if allowed else None)
        relaxed = index is None
        if relaxed:
            index = min(indices, key=lambda i: _last_played_key(pool[i]))
        pick = copy.copy(pool.pop(index))
        pick.autodj_note = _notes_join(getattr(pick, "autodj_note", ""),
                                       NOTE_SEPARATION_RELAXED if relaxed else "")
        chosen.append(pick)
        last = (pick.artist or "").casefold()
    return chosen


def autodj_top_up(*, station: Station) -> list[QueueItem]:
    """Fill the queue up to the station's depth from auto-DJ. Returns the new items."""
    deep_enough = QueueItem.objects.filter(station=station, status=QueueItem.Status.QUEUED).count() \
        >= station.queue_min_depth
    if deep_enough:  # the worker asks at every heartbeat: no lock for the usual answer
        return []
    with transaction.atomic():
        _queue_lock(station)
        queued = list(queue_items(station))
        missing = station.queue_min_depth - sum(1 for q in queued if q.status == QueueItem.Status.QUEUED)
        if missing <= 0:
            return []
        previous = queued[-1].track.artist if queued else (
            PlayLog.objects.filter(station=station).values_list("artist", flat=True).first() or "")
        picks = autodj_choose(autodj_candidates(station), previous_artist=previous, count=missing)
        free = max((q.position for q in queued), default=-1) + 1
        with translation.override(station.language):  # notes are stored text, in the station's language
            items = [QueueItem(station=station, track=t, reason=Reason.AUTODJ, position=free + i,
                               note=str(t.autodj_note)[:200])
                     for i, t in enumerate(picks)]
        QueueItem.objects.bulk_create(items)
        if free != len(queued):  # numbering had gaps (never after migration 0003): close them
            _queue_renumber(station)
        for item in items:
            if item.note:
                logger.info("station=%s track=%s queued by auto-DJ: %s", station.slug, item.track_id, item.note)
        if items:
            _changed(station)
    return items


SHORT_ITEM_MAX_SECONDS = 60.0


def short_items(station: Station, *, limit: int = 40) -> list[Track]:
    """Jingles and station IDs back-timing may close a gap with (at most a minute long)."""
    tracks = Track.objects.filter(station=station, kind=Track.Kind.JINGLE).playable().filter(
        duration__lte=SHORT_ITEM_MAX_SECONDS).order_by(F("last_played_at").asc(nulls_first=True), "id")
    return list(tracks[:limit])


def emergency_tracks(station: Station) -> list[Track]:
    return [e.track for e in EmergencyTrack.objects.filter(station=station).select_related("track")
            if e.track.is_playable]


def dead_air_reason(station: Station) -> str:
    """Why nothing can go on air, as one sentence in the station's language (for the dead-air alert)."""
    songs = Track.objects.filter(station=station, kind=Track.Kind.SONG)
    live = Q(enabled=True, missing_since__isnull=True)
    counts = songs.aggregate(
        total=Count("pk"), disabled=Count("pk", filter=Q(enabled=False)),
        missing=Count("pk", filter=Q(enabled=True, missing_since__isnull=False)),
        pending=Count("pk", filter=live & Q(analysis=Track.Analysis.PENDING)),
        failed=Count("pk", filter=live & Q(analysis=Track.Analysis.FAILED)))
    playable = songs.playable().count()
    # Whatever else keeps a song off air is its cached file (Track.is_playable's last test).
    counts["download"] = (counts["total"] - playable - counts["disabled"] - counts["missing"]
                          - counts["pending"] - counts["failed"])
    emergency = EmergencyTrack.objects.filter(station=station)
    emergency_total = emergency.count()
    emergency_playable = Track.objects.filter(pk__in=emergency.values("track_id")).playable().count()
    with translation.override(station.language):
        return gettext("%(songs)s, and %(emergency)s.") % {
            "songs": _songs_clause(counts, playable),
            "emergency": _emergency_clause(emergency_total, emergency_playable)}


def _songs_clause(counts: dict[str, int], playable: int) -> str:
    total = counts["total"]
    if total == 0:
        return gettext("The library has no songs")
    if playable:
        return ngettext("%(count)d song can play, but it could not be started (check the audio cache)",
                        "%(count)d songs can play, but none could be started (check the audio cache)",
                        playable) % {"count": playable}
    causes = {
        "disabled": (ngettext("The only song is disabled", "All %(count)d songs are disabled", total),
                     ngettext("%(count)d disabled", "%(count)d disabled", counts["disabled"])),
        "missing": (ngettext("The only song is missing from Drive",
                             "All %(count)d songs are missing from Drive", total),
                    ngettext("%(count)d missing from Drive", "%(count)d missing from Drive",
                             counts["missing"])),
        "pending": (ngettext("The only song is not analysed yet", "All %(count)d songs are not analysed yet",
                             total),
                    ngettext("%(count)d not analysed yet", "%(count)d not analysed yet", counts["pending"])),
        "failed": (ngettext("The only song failed analysis", "All %(count)d songs failed analysis", total),
                   ngettext("%(count)d failed analysis", "%(count)d failed analysis", counts["failed"])),
        "download": (ngettext("The only song is not downloaded yet",
                              "All %(count)d songs are not downloaded yet", total),
                     ngettext("%(count)d not downloaded yet", "%(count)d not downloaded yet",
                              counts["download"])),
    }
    present = [key for key in causes if counts[key]]
    if len(present) == 1:
        return causes[present[0]][0] % {"count": total}
    return ngettext("None of the %(count)d song can play (%(causes)s)",
                    "None of the %(count)d songs can play (%(causes)s)", total) % {
        "count": total, "causes": ", ".join(causes[key][1] % {"count": counts[key]} for key in present)}


def _emergency_clause(total: int, playable: int) -> str:
    if total == 0:
        return gettext("the emergency playlist is empty")
    if playable:
        return ngettext("%(count)d emergency track can play, but it could not be started",
                        "%(count)d emergency tracks can play, but none could be started",
                        playable) % {"count": playable}
    return ngettext("the only emergency track cannot play", "none of the %(count)d emergency tracks can play",
                    total) % {"count": total}


# --- State for clients ----------------------------------------------------------------

def player_state(station: Station) -> PlayerState:
    state, _ = PlayerState.objects.get_or_create(station=station)
    return state


def playback_snapshot(station: Station) -> dict[str, Any]:
    """The full status a client gets on connect: worker liveness plus what it reported."""
    beat = lease_holder(playback_lease_key(station))
    age = heartbeat_age(beat)
    worker_up = age is not None and age <= settings.PLAYBACK_STALE_SECONDS
    state = PlayerState.objects.filter(station=station).select_related("current_track").first()
    playing = bool(worker_up and state and state.is_playing)
    position = state.position if state else 0.0
    if playing and state.started_at and not state.paused:
        # Between heartbeats the position moves on with the clock.
        position = max(position, (timezone.now() - state.updated_at).total_seconds() + state.position)
        if state.duration:
            position = min(position, state.duration)
    return {
        "station": station.slug,
        "server_time": timezone.now().isoformat(),  # `position` is as of this time (clients' clock sync)
        "worker": {
            "up": worker_up,
            "heartbeat_at": beat.beat_at.isoformat() if beat and beat.beat_at else None,
            "started_at": beat.started_at.isoformat() if beat and beat.started_at and worker_up else None,
        },
        "is_playing": playing,
        "paused": bool(state and state.paused),
        "stopped": bool(state and state.stopped),
        "current": {**track_brief(state.current_track), "reason": state.current_reason,
                    "started_at": state.started_at.isoformat() if state.started_at else None,
                    "position": round(position, 2), "duration": state.duration}
        if state and state.current_track and worker_up else None,
        "volume": state.volume if state else 100,
        "queue": queue_data(station),
    }


def _track_public(track: Track | None) -> dict[str, Any] | None:
    if track is None:
        return None
    return {"id": track.pk, "title": track.title, "artist": track.artist, "kind": track.kind,
            "duration": track.duration}


# --- Now playing, from what the worker published ------------------------------------------
# The worker sends its status on every change and at least every 15 s (playback/worker.py); a copy
# kept in the cache (Redis) answers the now-playing endpoints without the lease and player-state
# queries. A copy older than this is not trusted: the worker may be gone.
NOW_PLAYING_STATUS_MAX_AGE = 20.0
# What next and what aired (two queries) is kept this long per station: the public endpoint
# already lets caches keep its answer for 5 s.
NOW_PLAYING_PARTS_SECONDS = 2.0


def _status_key(station_id: int) -> str:
    return f"playback:status:{station_id}"


def _parts_key(station_id: int, public: bool) -> str:
    return f"playback:now-playing-parts:{station_id}:{'public' if public else 'members'}"


def now_playing_publish(station: Station, status: dict[str, Any]) -> None:
    """Keep the worker's newest status where every web process can read it (the Django cache).

    Called by the playback worker as it sends the status; the cache write runs on the process's
    channel loop thread (like the message), never the caller's: the on-air thread must not wait
    on Redis. With no loop (a worker driven inline by tests) it is written here.
    """
    from django.core.cache import cache

    from radio import notify

    entry = {"status": status, "published": time.time()}
    key, timeout = _status_key(station.pk), NOW_PLAYING_STATUS_MAX_AGE
    loop = notify._background_loop
    if loop is not None:
        loop.latest(f"now-playing:{station.pk}", lambda: cache.aset(key, entry, timeout))
        return
    try:
        cache.set(key, entry, timeout)
    except Exception:  # noqa: BLE001 - only a copy: the endpoints fall back to the database
        logger.warning("station=%s now-playing status not cached: Redis unavailable", station.slug,
                       exc_info=True)


def _published_status(entry: dict[str, Any] | None, station: Station) -> dict[str, Any] | None:
    """The worker's status as a snapshot (position moved on with the clock), or None if stale."""
    if not entry:
        return None
    age = time.time() - entry["published"]
    status = entry["status"]
    if age > NOW_PLAYING_STATUS_MAX_AGE or status.get("station") != station.slug:
        return None
    current = status.get("current")
    if current and not status.get("paused") and not status.get("stopped"):
        position = current["position"] + max(0.0, age)
        if current.get("duration"):
            position = min(position, current["duration"])
        current = {**current, "position": round(position, 2)}
    return {**status, "current": current}


def _now_playing_parts(station: Station, *, public: bool, history: int) -> dict[str, Any]:
    """What plays next and what just aired: one query each."""
    queued = list(QueueItem.objects.filter(station=station, status=QueueItem.Status.QUEUED)
                  .select_related("track", "requested_by").order_by("position", "id"))
    playing_next = None
    if queued:
        first = queued[0]
        playing_next = {"track": _track_public(first.track), "reason": first.reason}
        if not public:
            playing_next["requested_by"] = first.requested_by.get_username() if first.requested_by else None
    logs = PlayLog.objects.filter(station=station).select_related("track", "requested_by")[:history]
    song_history = []
    for log in logs:
        # Title and artist as they aired, even if the track was renamed since.
        row = {"track": {"id": log.track_id, "title": log.title, "artist": log.artist, "kind": log.kind,
                         "duration": log.track.duration},
               "started_at": log.started_at.isoformat(),
               "ended_at": log.ended_at.isoformat() if log.ended_at else None,
               "played_seconds": round(log.played_seconds, 2), "outcome": log.outcome,
               "reason": log.reason}
        if not public:
            row["requested_by"] = log.requested_by.get_username() if log.requested_by else None
        song_history.append(row)
    return {"playing_next": playing_next, "queue_length": len(queued), "song_history": song_history}


def now_playing_data(station: Station, *, public: bool = False, history: int = 10) -> dict[str, Any]:
    """What is on air, next and just played (after AzuraCast's now-playing payload).

    On air: the status the worker last published (cache), else read from the database (worker
    down, or Redis away). `public=True` leaves out everything about people (who asked for an item).
    """
    from django.core.cache import cache

    status_key, parts_key = _status_key(station.pk), _parts_key(station.pk, public)
    try:
        cached = cache.get_many([status_key, parts_key])
    except Exception:  # noqa: BLE001 - Redis away: the database answers alone
        logger.warning("station=%s now-playing cache unavailable", station.slug, exc_info=True)
        cached = {}
    snap = _published_status(cached.get(status_key), station)
    published = snap is not None
    parts = cached.get(parts_key) if published else None
    if snap is None:
        snap = playback_snapshot(station)
    if parts is None:
        parts = _now_playing_parts(station, public=public, history=history)
        if published:  # the worker is publishing: the next requests share these for a moment
            try:
                cache.set(parts_key, parts, NOW_PLAYING_PARTS_SECONDS)
            except Exception:  # noqa: BLE001
                logger.warning("station=%s now-playing parts not cached", station.slug, exc_info=True)
    current = snap["current"]
    now_playing = None
    if current:
        duration = current["duration"]  # the length on air (after cues), as the worker reported
        elapsed = current["position"]
        now_playing = {
            "track": {key: current[key] for key in ("id", "title", "artist", "kind", "duration")},
            "started_at": current["started_at"], "elapsed": elapsed,
            "remaining": round(max(0.0, duration - elapsed), 2) if duration else None,
            "reason": current["reason"], "volume": snap["volume"],
        }
    return {
        "station": {"slug": station.slug, "name": station.name, "time_zone": station.time_zone},
        "is_online": snap["worker"]["up"],
        "is_playing": snap["is_playing"],
        "paused": snap["paused"],
        "now_playing": now_playing,
        **parts,
    }
