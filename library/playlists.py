"""Playlists: which tracks a smart playlist holds, and what a playlist gives next.

Smart rules, each only when set: kinds, genres, artists (any of them, case-insensitive),
language, year range, length range (as heard: after cues), not aired within N hours, and at
most `limit` tracks (least recently played first). Only playable tracks ever come out.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from library.models import Playlist, Track
from library.playlist_order import pick_by_cursor, pick_random


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
