"""Bad input to the playback API answers 400 naming the field, never a 500 (on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from playback.models import PlayerCommand, PlayerState, PlayLog, QueueItem, Reason
from radio.models import Role

pytestmark = pytest.mark.django_db


def url(station, *rest) -> str:
    return "/".join([f"/api/v1/stations/{station.slug}", *map(str, rest)])


@pytest.fixture
def editor_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.EDITOR, station, username="editor"))
    api_client.raise_request_exception = False  # a 500 must show as a 500, not as the test's exception
    return api_client


def post_json(client, path: str, raw: str):
    """POST a raw JSON text: `1e400` is valid JSON that Python reads as infinity."""
    return client.generic("POST", path, raw, content_type="application/json")


@pytest.mark.parametrize("endpoint", ["queue", "player/play-now"])
@pytest.mark.parametrize("raw", ["1e400", "-1e400", "1e30", "9223372036854775808", "true", "0", '"1e400"'])
def test_a_track_that_is_not_a_whole_number_id_is_a_400_naming_track(editor_client, station, endpoint, raw):
    response = post_json(editor_client, url(station, endpoint), f'{{"track": {raw}}}')
    assert response.status_code == 400, (raw, response.content)
    assert "track" in response.json()
    assert not QueueItem.objects.exists() and not PlayerCommand.objects.exists()


@pytest.mark.parametrize("endpoint", ["queue", "player/play-now"])
def test_track_1_point_5_is_not_taken_as_track_1(editor_client, station, playable_track, endpoint):
    response = post_json(editor_client, url(station, endpoint), f'{{"track": {playable_track.pk}.5}}')
    assert response.status_code == 400 and "track" in response.json()
    assert not QueueItem.objects.exists()
    # The whole number (also written 7.0, or as a form's "7") is still that track.
    response = post_json(editor_client, url(station, endpoint), f'{{"track": {playable_track.pk}.0}}')
    assert response.status_code in (201, 202), response.content
    assert QueueItem.objects.get().track == playable_track


@pytest.mark.parametrize("query", ["to=0001-01-01T00:00:00Z", "from=0001-01-01T00:00:00Z",
                                   "to=0001-01-01T00:00:00%2B03:00", "from=9999-12-31T23:59:59Z",
                                   "to=9999-12-31T23:59:59-05:00"])
@pytest.mark.parametrize("endpoint", ["history.csv", "history"])
def test_a_date_beyond_the_calendar_in_any_zone_is_a_400_naming_it(editor_client, station, endpoint, query):
    response = editor_client.get(url(station, endpoint) + "?" + query)
    assert response.status_code == 400, (query, response.content)
    assert query.split("=")[0] in response.json()


@pytest.mark.parametrize("endpoint", ["history.csv", "history"])
def test_a_utc_offset_postgresql_cannot_store_is_read_as_utc(editor_client, station, playable_track, endpoint):
    # ISO 8601 allows -19:46; PostgreSQL refuses offsets past ±15:59 (it was a 500).
    PlayLog.objects.create(station=station, track=playable_track, title="Shir", kind="song",
                           reason=Reason.AUTODJ, started_at=datetime(2025, 5, 2, 3, 0, tzinfo=UTC),
                           played_seconds=1.0, outcome=PlayLog.Outcome.COMPLETED)
    # 12:00 at -19:46 is 07:46 UTC the next day.
    response = editor_client.get(url(station, endpoint) + "?from=2025-05-01T12:00:00-19:46")
    assert response.status_code == 200, response.content
    response = editor_client.get(url(station, endpoint) + "?to=2025-05-01T12:00:00-19:46")
    assert response.status_code == 200
    if endpoint == "history":
        assert [r["title"] for r in response.json()["results"]] == ["Shir"]


def test_ordinary_old_and_far_dates_still_export(editor_client, station, playable_track):
    PlayLog.objects.create(station=station, track=playable_track, title="Old", kind="song",
                           reason=Reason.AUTODJ, started_at=datetime(1990, 5, 1, tzinfo=UTC),
                           played_seconds=1.0, outcome=PlayLog.Outcome.COMPLETED)
    query = "?from=0001-01-03T00:00:00Z&to=9999-12-01T00:00:00Z"
    response = editor_client.get(url(station, "history.csv") + query)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="kol-as-run-0001-01-03-9999-12-01.csv"'


@pytest.mark.parametrize("query", ["track=1e30", "track=1.5", "track=99999999999999999999"])
def test_a_track_filter_beyond_an_id_is_a_400(editor_client, station, query):
    response = editor_client.get(url(station, "history") + "?" + query)
    assert response.status_code == 400 and "track" in response.json()


def test_seek_beyond_the_item_on_air_is_a_400_naming_seconds(editor_client, station, playable_track):
    PlayerState.objects.create(station=station, is_playing=True, current_track=playable_track,
                               started_at=timezone.now(), duration=180.0)
    for seconds in (180, 180.5, 10_000):
        response = editor_client.post(url(station, "player/seek"), {"seconds": seconds}, format="json")
        assert response.status_code == 400, seconds
        assert "180.0 s" in response.json()["seconds"][0]
    assert not PlayerCommand.objects.exists()
    response = editor_client.post(url(station, "player/seek"), {"seconds": 179.5}, format="json")
    assert response.status_code == 202
    assert PlayerCommand.objects.get().args == {"seconds": 179.5}


@pytest.mark.parametrize("raw", ["1e400", "-1", '"NaN"', '"x"', "null"])
def test_seek_to_a_non_number_is_a_400_naming_seconds(editor_client, station, raw):
    response = post_json(editor_client, url(station, "player/seek"), f'{{"seconds": {raw}}}')
    assert response.status_code == 400 and "seconds" in response.json(), raw


def test_the_worker_refuses_a_seek_beyond_the_item_and_reports_it_failed(station, make_playable):
    """A seek the API accepted for a longer item (it changed since) is never reported done."""
    import queue as queue_module

    from playback.engine import Engine, OutputConfig
    from playback.services import command_issue, queue_append
    from playback.worker import PlaybackWorker

    events: queue_module.Queue = queue_module.Queue()
    engine = Engine(OutputConfig("dummy"), events)
    worker = PlaybackWorker(station, engine, events, owner="test:1:x")
    try:
        worker.recover()
        queue_append(station=station, track=make_playable("Short", duration=1.0))
        deadline = timezone.now() + timedelta(seconds=10)
        while worker.on_air is None and timezone.now() < deadline:
            worker.step(timeout=0.02)
        assert worker.on_air is not None
        beyond = command_issue(station=station, action=PlayerCommand.Action.SEEK, args={"seconds": 30.0})
        inside = command_issue(station=station, action=PlayerCommand.Action.SEEK, args={"seconds": 0.2})
        assert worker.apply(beyond) == (False, "beyond the end of the item (1.0 s)")
        assert worker.apply(inside) == (True, "seeked")
    finally:
        engine.release()
