"""Playlists: which tracks a smart playlist holds, and what a playlist gives next.

Smart rules, each only when set: kinds, genres, artists (any of them, case-insensitive),
language, year range, length range (as heard: after cues), not aired within N hours, and at
most `limit` tracks (least recently played first). Only playable tracks ever come out.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import slugify

from library.models import Playlist, PlaylistItem, Track
from library.playlist_order import pick_by_cursor, pick_random
from radio.models import Station
from radio.services import audit_record, snapshot


def smart_tracks(playlist: Playlist, *, now: datetime | None = None) -> QuerySet:
    """The playable tracks a smart playlist holds now, least recently played first."""
    tracks = Track.objects.filter(station=playlist.station).playable()
    if playlist.kinds:
        tracks = tracks.filter(kind__in=playlist.kinds)
    genre_ids = list(playlist.genres.values_list("pk", flat=True))
    if genre_ids:
        tracks = tracks.filter(genre_id__in=genre_ids)
    if playlist.artists:
        anyone = Q()
        for artist in playlist.artists:
            anyone |= Q(artist__iexact=artist)
        tracks = tracks.filter(anyone)
    if playlist.language:
        tracks = tracks.filter(language__iexact=playlist.language)
    if playlist.year_from is not None:
        tracks = tracks.filter(year__gte=playlist.year_from)
    if playlist.year_to is not None:
        tracks = tracks.filter(year__lte=playlist.year_to)
    if playlist.min_seconds is not None or playlist.max_seconds is not None:
        heard = Coalesce(F("cue_out"), F("duration")) - F("cue_in")
        tracks = tracks.annotate(heard_seconds=heard)
        if playlist.min_seconds is not None:
            tracks = tracks.filter(heard_seconds__gte=playlist.min_seconds)
        if playlist.max_seconds is not None:
            tracks = tracks.filter(heard_seconds__lte=playlist.max_seconds)
    if playlist.not_aired_hours:
        since = (now or timezone.now()) - timedelta(hours=playlist.not_aired_hours)
        tracks = tracks.filter(Q(last_played_at__isnull=True) | Q(last_played_at__lt=since))
    tracks = tracks.order_by(F("last_played_at").asc(nulls_first=True), "pk")
    return tracks[:playlist.limit] if playlist.limit else tracks


def playlist_next(playlist: Playlist, *, count: int = 1, rng: random.Random | None = None) -> list[Track]:
    """The next `count` tracks of the playlist, its place kept (static) — playable ones only."""
    if playlist.kind == Playlist.Kind.SMART:
        return list(smart_tracks(playlist)[:count])
    with transaction.atomic():
        locked = Playlist.objects.select_for_update().get(pk=playlist.pk)
        ids = list(locked.items.filter(track__in=Track.objects.playable()).values_list("track_id", flat=True))
        if locked.order == Playlist.Order.RANDOM:
            picks, cycle = pick_random(ids, cycle=locked.cycle, last=locked.last_track_id, count=count,
                                       rng=rng or random.Random())
            locked.cycle = sorted(cycle)
        else:
            picks = pick_by_cursor(ids, locked.order, cursor=locked.cursor, count=count,
                                   seed=f"playlist-{locked.pk}")
            locked.cursor += len(picks)
        if picks:
            locked.last_track_id = picks[-1]
        locked.save(update_fields=["cursor", "cycle", "last_track", "updated_at"])
    tracks = Track.objects.in_bulk(picks)
    return [tracks[pk] for pk in picks]


# --- Changes (audited, each in one transaction) ----------------------------------

def playlist_snapshot(playlist: Playlist) -> dict[str, Any]:
    """The playlist for the audit journal, its items (track ids in order) included."""
    return {**snapshot(playlist), "items": list(playlist.items.values_list("track_id", flat=True))}


def _playlist_write(playlist: Playlist, data: dict[str, Any]) -> None:
    data = dict(data)
    genres, items = data.pop("genres", None), data.pop("items", None)
    for field, value in data.items():
        setattr(playlist, field, value)
    if not playlist.slug:
        playlist.slug = slugify(playlist.name, allow_unicode=True)[:200]
    playlist.save()
    if genres is not None:
        playlist.genres.set(genres)
    if items is not None:
        playlist.items.all().delete()
        PlaylistItem.objects.bulk_create(PlaylistItem(playlist=playlist, track_id=track_id, position=position)
                                         for position, track_id in enumerate(items))


def playlist_create(*, actor, station: Station, data: dict[str, Any]) -> Playlist:
    with transaction.atomic():
        playlist = Playlist(station=station)
        _playlist_write(playlist, data)
        audit_record(actor=actor, station=station, action="playlist.add", obj=playlist,
                     after=playlist_snapshot(playlist))
    return playlist


def playlist_update(*, actor, playlist: Playlist, data: dict[str, Any]) -> Playlist:
    """Change fields, rules and (when `items` is given) the whole track list; its place is kept."""
    with transaction.atomic():
        before = playlist_snapshot(playlist)
        _playlist_write(playlist, data)
        audit_record(actor=actor, station=playlist.station, action="playlist.update", obj=playlist,
                     before=before, after=playlist_snapshot(playlist))
    return playlist


def playlist_delete(*, actor, playlist: Playlist) -> None:
    with transaction.atomic():
        audit_record(actor=actor, station=playlist.station, action="playlist.delete", obj=playlist,
                     before=playlist_snapshot(playlist))
        playlist.delete()


def playlist_rewind(*, actor, playlist: Playlist) -> Playlist:
    """Forget where the playlist stands: the next pick is the first of a new pass (or a new random cycle)."""
    with transaction.atomic():
        locked = Playlist.objects.select_for_update().get(pk=playlist.pk)  # as playlist_next takes it
        before = {"cursor": locked.cursor, "cycle": locked.cycle, "last_track": locked.last_track_id}
        locked.cursor, locked.cycle, locked.last_track = 0, [], None
        locked.save(update_fields=["cursor", "cycle", "last_track", "updated_at"])
        audit_record(actor=actor, station=locked.station, action="playlist.rewind", obj=locked, before=before,
                     after={"cursor": 0, "cycle": [], "last_track": None})
    return locked


def playlist_tracks(playlist: Playlist) -> QuerySet:
    """The playable tracks the playlist would play now: a static one's items as listed (a track listed
    twice comes twice), a smart one's `smart_tracks`."""
    if playlist.kind == Playlist.Kind.SMART:
        tracks = smart_tracks(playlist)
        if tracks.query.is_sliced:  # `limit`: re-read as a filter, so a page can be counted and cut
            tracks = Track.objects.filter(pk__in=tracks.values("pk")).order_by(*tracks.query.order_by)
    else:
        tracks = (Track.objects.playable().filter(station=playlist.station, playlist_items__playlist=playlist)
                  .order_by("playlist_items__position", "playlist_items__id"))
    return tracks.select_related("genre", "station")
