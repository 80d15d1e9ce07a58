"""Playback rules: auto-DJ choice and top-up, the as-run log write, live queue updates."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from library.models import Track
from playback.models import PlayLog, QueueItem, Reason
from playback.services import (
    autodj_candidates,
    autodj_choose,
    autodj_top_up,
    playlog_write,
    queue_append,
    queue_remove,
)
from radio.notify import station_group


def track(artist: str, title: str = "") -> Track:
    return Track(title=title or f"{artist} song", artist=artist)


# --- auto-DJ choice (pure rule) -------------------------------------------------

def test_autodj_never_puts_the_same_artist_back_to_back():
    pool = [track("Arik", "1"), track("arik", "2"), track("Shlomo", "3"), track("Arik", "4"),
            track("Ofra", "5"), track("Shlomo", "6")]
    chosen = autodj_choose(pool, previous_artist="ARIK", count=6)
    artists = ["arik", *[t.artist.casefold() for t in chosen]]
    assert all(a != b for a, b in zip(artists, artists[1:], strict=False))
    assert len(chosen) == 6
    assert len({t.title for t in chosen}) == 6  # no track twice


def test_tracks_without_an_artist_never_block_each_other():
    chosen = autodj_choose([track("", "a"), track("", "b")], previous_artist="", count=2)
    assert [t.title for t in chosen] == ["a", "b"]


# --- auto-DJ candidates and top-up -----------------------------------------------

@pytest.mark.django_db
def test_candidates_skip_recent_plays_queued_tracks_and_what_is_not_a_playable_song(station, make_playable):
    # Two songs outside the window are enough for a queue two deep: no rule needs to give way.
    # (When they are not, see tests/playback/test_autodj.py.)
    station.no_repeat_hours, station.queue_min_depth = 3, 2
    station.save()
    now = timezone.now()
    never = make_playable("Never played")
    long_ago = make_playable("Long ago", last_played_at=now - timedelta(hours=5))
    make_playable("Just now", last_played_at=now - timedelta(minutes=10))
    make_playable("Two hours ago", last_played_at=now - timedelta(hours=2, minutes=59))
    queue_append(station=station, track=make_playable("Queued"))
    make_playable("Jingle", kind=Track.Kind.JINGLE)
    make_playable("Disabled", enabled=False)
    make_playable("Unanalysed", analysis=Track.Analysis.PENDING)
    titles = [t.title for t in autodj_candidates(station, now=now)]
    assert sorted(titles) == sorted([never.title, long_ago.title])
    # Least recently played first: never-played songs lead.
    assert titles == ["Never played", "Long ago"]
    assert [t.autodj_note for t in autodj_candidates(station, now=now)] == ["", ""]


@pytest.mark.django_db
def test_top_up_fills_the_queue_to_the_station_depth(station, make_playable):
    station.queue_min_depth = 3
    station.save()
    manual = queue_append(station=station, track=make_playable("Request", "Arik"))
    for title, artist in (("A1", "Arik"), ("A2", "Arik"), ("S1", "Shlomo"), ("O1", "Ofra"), ("S2", "Shlomo")):
        make_playable(title, artist)

    added = autodj_top_up(station=station)
    assert len(added) == 2
    items = list(QueueItem.objects.filter(station=station).select_related("track").order_by("position", "id"))
    assert items[0] == manual and all(i.reason == Reason.AUTODJ for i in items[1:])
    assert len(items) == 3
    artists = [i.track.artist for i in items]
    assert all(a != b for a, b in zip(artists, artists[1:], strict=False))
    assert autodj_top_up(station=station) == []  # already deep enough

    queue_remove(item=items[1])
    assert len(autodj_top_up(station=station)) == 1
    assert QueueItem.objects.filter(station=station).count() == 3


@pytest.mark.django_db
def test_top_up_counts_only_waiting_items(station, make_playable):
    station.queue_min_depth = 2
    station.save()
    on_air = queue_append(station=station, track=make_playable("On Air", "X"))
    QueueItem.objects.filter(pk=on_air.pk).update(status=QueueItem.Status.PLAYING)
    make_playable("One", "Y")
    make_playable("Two", "Z")
    assert len(autodj_top_up(station=station)) == 2


# --- as-run log ------------------------------------------------------------------

@pytest.mark.django_db
def test_playlog_write_is_idempotent_and_counts_a_play_once(station, make_playable):
    song = make_playable("Shalom", "Kol Band")
    started = timezone.now() - timedelta(minutes=3)
    entry = {"uid": uuid.uuid4(), "station_id": station.pk, "track_id": song.pk, "title": song.title,
             "artist": song.artist, "kind": song.kind, "started_at": started, "ended_at": None,
             "played_seconds": 10.0, "outcome": PlayLog.Outcome.INTERRUPTED, "reason": Reason.AUTODJ}
    assert playlog_write([entry]) == 1
    # The same row again (a worker catching up after an outage), now with its end.
    assert playlog_write([{**entry, "ended_at": started + timedelta(seconds=180), "played_seconds": 180.0,
                           "outcome": PlayLog.Outcome.COMPLETED}]) == 0
    log = PlayLog.objects.get()
    assert (log.outcome, log.played_seconds) == (PlayLog.Outcome.COMPLETED, 180.0)
    song.refresh_from_db()
    assert song.play_count == 1 and song.last_played_at == started


@pytest.mark.django_db
def test_a_failed_play_is_logged_but_not_counted(station, make_playable):
    song = make_playable("Broken")
    playlog_write([{"uid": uuid.uuid4(), "station_id": station.pk, "track_id": song.pk, "title": song.title,
                    "kind": song.kind, "started_at": timezone.now(), "played_seconds": 0.0,
                    "outcome": PlayLog.Outcome.FAILED, "failure_reason": "unreadable",
                    "reason": Reason.MANUAL}])
    song.refresh_from_db()
    assert PlayLog.objects.get().failure_reason == "unreadable"
    assert (song.play_count, song.last_played_at) == (0, None)


# --- live fan-out ------------------------------------------------------------------

async def _next_message(layer, channel: str, timeout: float = 5.0) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout)


@pytest.mark.django_db(transaction=True)
def test_a_queue_change_reaches_the_station_group_once_committed(station, make_playable):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(station_group(station.slug), channel)
    song = make_playable("Shalom", "Kol Band")

    item = queue_append(station=station, track=song)
    message = async_to_sync(_next_message)(layer, channel)
    assert message["type"] == "queue_update"
    assert [(i["id"], i["track"]["title"], i["status"]) for i in message["data"]["queue"]] == [
        (item.pk, "Shalom", "queued")]

    queue_remove(item=item)
    message = async_to_sync(_next_message)(layer, channel)
    assert (message["type"], message["data"]) == ("queue_update", {"queue": []})
