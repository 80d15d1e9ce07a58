"""The playback API: roles, queue, transport commands, now playing (members and public), as-run log."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.utils import timezone
from rest_framework.authtoken.models import Token

from library.models import Track
from playback.models import PlayerCommand, PlayerState, PlayLog, QueueItem, Reason
from playback.services import command_finish, playback_lease_key, queue_append
from radio.models import AuditEntry, Role
from radio.services import lease_acquire

pytestmark = pytest.mark.django_db


def url(station, *rest) -> str:
    return "/".join([f"/api/v1/stations/{station.slug}", *map(str, rest)])


def queued(station) -> list[tuple[str, str]]:
    """(title, status) of the queue in play order."""
    return [(i.track.title, i.status) for i in QueueItem.objects.filter(station=station)
            .select_related("track").order_by("position", "id")]


def body(response) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode("utf-8")


@pytest.fixture
def editor(station, make_user):
    return make_user(Role.EDITOR, station, username="editor")


@pytest.fixture
def editor_client(api_client, editor):
    api_client.force_authenticate(editor)
    return api_client


@pytest.fixture
def viewer_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.VIEWER, station, username="viewer"))
    return api_client


def worker_up(station) -> None:
    """A live playback-worker lease, as a running worker holds it."""
    assert lease_acquire(key=playback_lease_key(station), owner="test:1:abc", stale_after=60, station=station)


def log(station, track, minutes_ago: float, **fields) -> PlayLog:
    started = fields.pop("started_at", timezone.now() - timedelta(minutes=minutes_ago))
    values = {"title": track.title, "artist": track.artist, "kind": track.kind, "started_at": started,
              "ended_at": started + timedelta(seconds=60), "played_seconds": 60.0,
              "outcome": PlayLog.Outcome.COMPLETED, "reason": Reason.AUTODJ}
    values.update(fields)
    return PlayLog.objects.create(station=station, track=track, **values)


# --- access -------------------------------------------------------------------

READS = ["now-playing", "queue", "history", "history.csv", "player/commands"]
WRITES = [("post", "queue", {"track": 1}), ("post", "queue/clear", {}), ("patch", "queue/1", {"to_index": 0}),
          ("delete", "queue/1", None), *[("post", f"player/{a}", {}) for a in
                                         ("play", "pause", "resume", "stop", "skip")],
          ("post", "player/seek", {"seconds": 1}), ("post", "player/volume", {"volume": 50}),
          ("post", "player/play-now", {"track": 1})]


def test_anonymous_requests_get_401(api_client, station):
    for path in READS:
        response = api_client.get(url(station, path))
        assert response.status_code == 401, path
        assert "detail" in response.json()
    for method, path, data in WRITES:
        assert getattr(api_client, method)(url(station, path), data, format="json").status_code == 401, path


def test_member_of_another_station_gets_403_on_everything(api_client, station, other_station, make_user,
                                                          playable_track):
    api_client.force_authenticate(make_user(Role.ADMIN, other_station))
    item = queue_append(station=station, track=playable_track)
    for path in READS:
        assert api_client.get(url(station, path)).status_code == 403, path
    for method, path, data in WRITES:
        path = path.replace("queue/1", f"queue/{item.pk}")
        assert getattr(api_client, method)(url(station, path), data, format="json").status_code == 403, path
    assert QueueItem.objects.filter(pk=item.pk).exists() and not PlayerCommand.objects.exists()


def test_viewer_reads_everything_but_changes_nothing(viewer_client, station, playable_track):
    item = queue_append(station=station, track=playable_track)
    for path in READS:
        assert viewer_client.get(url(station, path)).status_code == 200, path
    for method, path, data in WRITES:
        path = path.replace("queue/1", f"queue/{item.pk}")
        data = {**data, "track": playable_track.pk} if data and "track" in data else data
        response = getattr(viewer_client, method)(url(station, path), data, format="json")
        assert response.status_code == 403, path
        assert "editor" in response.json()["detail"]
    assert queued(station) == [("Boker Tov", "queued")]
    assert not PlayerCommand.objects.exists()


def test_unknown_station_is_404(viewer_client):
    assert viewer_client.get("/api/v1/stations/nope/queue").status_code == 404
    assert viewer_client.get("/api/v1/stations/nope/now-playing").status_code == 404


# --- queue --------------------------------------------------------------------

def test_editor_adds_at_the_end_and_next_in_play_order_with_audit(editor_client, editor, station,
                                                                   make_playable):
    first, second, urgent = make_playable("First"), make_playable("Second"), make_playable("Urgent")
    response = editor_client.post(url(station, "queue"), {"track": first.pk}, format="json")
    assert response.status_code == 201
    created = response.json()
    assert created["track"]["title"] == "First" and created["status"] == "queued"
    assert created["requested_by"] == "editor" and created["reason"] == "manual"
    assert editor_client.post(url(station, "queue"), {"track": second.pk, "at": "end"},
                              format="json").status_code == 201
    assert editor_client.post(url(station, "queue"), {"track": urgent.pk, "at": "next"},
                              format="json").status_code == 201

    assert queued(station) == [("Urgent", "queued"), ("First", "queued"), ("Second", "queued")]
    listing = editor_client.get(url(station, "queue")).json()
    assert [i["track"]["title"] for i in listing] == ["Urgent", "First", "Second"]
    assert [i["position"] for i in listing] == sorted(i["position"] for i in listing)
    actions = list(AuditEntry.objects.filter(actor=editor).order_by("id").values_list("action", flat=True))
    assert actions == ["queue.append", "queue.append", "queue.insert_next"]


def test_editor_moves_removes_and_clears(editor_client, editor, station, make_playable):
    items = [queue_append(station=station, track=make_playable(t)) for t in ("A", "B", "C", "D")]
    response = editor_client.patch(url(station, "queue", items[2].pk), {"to_index": 0}, format="json")
    assert response.status_code == 200 and response.json()["id"] == items[2].pk
    assert [t for t, _ in queued(station)] == ["C", "A", "B", "D"]
    editor_client.patch(url(station, "queue", items[2].pk), {"to_index": 99}, format="json")
    assert [t for t, _ in queued(station)] == ["A", "B", "D", "C"]
    assert editor_client.patch(url(station, "queue", items[0].pk), {"to_index": -1},
                               format="json").status_code == 400

    assert editor_client.delete(url(station, "queue", items[1].pk)).status_code == 204
    assert [t for t, _ in queued(station)] == ["A", "D", "C"]
    assert editor_client.delete(url(station, "queue", items[1].pk)).status_code == 404

    response = editor_client.post(url(station, "queue/clear"))
    assert response.status_code == 200 and response.json() == {"removed": 3}
    assert queued(station) == []
    actions = set(AuditEntry.objects.filter(actor=editor).values_list("action", flat=True))
    assert {"queue.move", "queue.remove", "queue.clear"} <= actions
    move = AuditEntry.objects.filter(action="queue.move").order_by("id").first()
    assert move.object_id == str(items[2].pk) and move.after["to_index"] == 0


def test_tracks_that_cannot_go_on_air_are_refused_with_the_reason(editor_client, station, other_station,
                                                                   make_playable):
    foreign = make_playable("Elsewhere", station=other_station)
    disabled = make_playable("Off", enabled=False)
    missing = make_playable("Gone", missing_since=timezone.now())
    pending = make_playable("Unmeasured", analysis=Track.Analysis.PENDING)
    broken = make_playable("Broken", analysis=Track.Analysis.FAILED, analysis_error="no audio stream")
    cases = {foreign: "another station", disabled: "disabled", missing: "missing",
             pending: "Pending", broken: "no audio stream"}
    for track, reason in cases.items():
        for path, data in (("queue", {"track": track.pk}), ("queue", {"track": track.pk, "at": "next"}),
                           ("player/play-now", {"track": track.pk})):
            response = editor_client.post(url(station, path), data, format="json")
            assert response.status_code == 400, (track.title, path)
            assert reason in response.json()["track"][0], response.json()
    response = editor_client.post(url(station, "queue"), {"track": 999_999}, format="json")
    assert response.status_code == 400 and "track" in response.json()
    assert editor_client.post(url(station, "queue"), {"track": disabled.pk, "at": "soon"},
                              format="json").json().keys() == {"at"}
    assert not QueueItem.objects.exists() and not PlayerCommand.objects.exists()


def test_the_item_on_air_cannot_be_removed_or_moved(editor_client, station, make_playable):
    on_air = queue_append(station=station, track=make_playable("On Air"))
    QueueItem.objects.filter(pk=on_air.pk).update(status=QueueItem.Status.PLAYING)
    later = queue_append(station=station, track=make_playable("Later"))
    response = editor_client.delete(url(station, "queue", on_air.pk))
    assert response.status_code == 409 and "skip it" in response.json()["detail"]
    response = editor_client.patch(url(station, "queue", on_air.pk), {"to_index": 1}, format="json")
    assert response.status_code == 409 and "on air" in response.json()["detail"]
    # Clearing keeps it too.
    assert editor_client.post(url(station, "queue/clear")).json() == {"removed": 1}
    assert queued(station) == [("On Air", "playing")]
    assert not QueueItem.objects.filter(pk=later.pk).exists()


def test_play_next_and_moves_keep_the_item_on_air_at_the_top(editor_client, station, make_playable):
    on_air = queue_append(station=station, track=make_playable("On Air"))
    QueueItem.objects.filter(pk=on_air.pk).update(status=QueueItem.Status.PLAYING, position=50)
    editor_client.post(url(station, "queue"), {"track": make_playable("Next").pk, "at": "next"}, format="json")
    assert queued(station) == [("On Air", "playing"), ("Next", "queued")]
    last = editor_client.post(url(station, "queue"), {"track": make_playable("Last").pk}, format="json").json()
    editor_client.patch(url(station, "queue", last["id"]), {"to_index": 0}, format="json")
    assert queued(station) == [("On Air", "playing"), ("Last", "queued"), ("Next", "queued")]


# --- transport ----------------------------------------------------------------

def test_each_transport_button_stores_a_pending_command(editor_client, editor, station):
    for action in ("play", "pause", "resume", "stop", "skip"):
        response = editor_client.post(url(station, "player", action))
        assert response.status_code == 202, action
        command = PlayerCommand.objects.get(pk=response.json()["command"])
        assert response.json() == {"command": command.pk, "status": "pending"}
        assert (command.station, command.action, command.args, command.status, command.requested_by) == (
            station, action, {}, PlayerCommand.Status.PENDING, editor)
        assert AuditEntry.objects.filter(action=f"player.{action}", object_id=str(command.pk)).exists()


def test_seek_and_volume_take_checked_arguments(editor_client, station):
    def post(action, data):
        return editor_client.post(url(station, "player", action), data, format="json")

    for bad in ({}, {"seconds": -1}, {"seconds": "soon"}, {"seconds": "nan"}, {"seconds": "inf"}):
        response = post("seek", bad)
        assert response.status_code == 400 and "seconds" in response.json(), bad
    for bad in ({}, {"volume": 101}, {"volume": -1}, {"volume": "loud"}, {"volume": 50, "fade_ms": 10_001},
                {"volume": 50, "fade_ms": -5}):
        response = post("volume", bad)
        assert response.status_code == 400, bad
        assert response.json().keys() <= {"volume", "fade_ms"}
    assert not PlayerCommand.objects.exists()

    seek = PlayerCommand.objects.get(pk=post("seek", {"seconds": 12.5}).json()["command"])
    assert (seek.action, seek.args) == ("seek", {"seconds": 12.5})
    faded = PlayerCommand.objects.get(pk=post("volume", {"volume": 40, "fade_ms": 500}).json()["command"])
    assert (faded.action, faded.args) == ("volume", {"volume": 40, "fade_ms": 500})
    plain = PlayerCommand.objects.get(pk=post("volume", {"volume": 0}).json()["command"])
    assert plain.args == {"volume": 0}


def test_play_now_puts_the_track_next_and_asks_the_player_to_cut_to_it(editor_client, station,
                                                                        make_playable):
    queue_append(station=station, track=make_playable("Waiting"))
    urgent = make_playable("Breaking News", kind=Track.Kind.NEWSFLASH)
    response = editor_client.post(url(station, "player/play-now"), {"track": urgent.pk}, format="json")
    assert response.status_code == 202
    command = PlayerCommand.objects.get(pk=response.json()["command"])
    item = QueueItem.objects.get(track=urgent)
    assert command.action == "play_now" and command.args == {"queue_item": item.pk}
    assert queued(station) == [("Breaking News", "queued"), ("Waiting", "queued")]


def test_command_outcome_can_be_read_back(api_client, editor_client, station, other_station, make_user):
    command_id = editor_client.post(url(station, "player/skip")).json()["command"]
    viewer = make_user(Role.VIEWER, station)
    api_client.force_authenticate(viewer)
    response = api_client.get(url(station, "player/commands", command_id))
    assert response.status_code == 200
    assert response.json()["status"] == "pending" and response.json()["action"] == "skip"
    assert response.json()["requested_by"] == "editor"

    command_finish(PlayerCommand.objects.get(pk=command_id), ok=True, result="skipped")
    data = api_client.get(url(station, "player/commands", command_id)).json()
    assert (data["status"], data["result"]) == ("done", "skipped") and data["handled_at"]
    assert api_client.get(url(station, "player/commands") + "?status=done").json()["count"] == 1
    assert api_client.get(url(other_station, "player/commands", command_id)).status_code == 403
    api_client.force_authenticate(make_user(Role.VIEWER, other_station))
    assert api_client.get(url(other_station, "player/commands", command_id)).status_code == 404


# --- now playing -------------------------------------------------------------

@pytest.fixture
def on_air(station, editor, make_playable):
    """The worker is up and playing 'Shir' (30 s into 180 s); 'Next Up' waits; 12 items aired before."""
    worker_up(station)
    song = make_playable("Shir", "Zehava", duration=180.0)
    playing = queue_append(station=station, track=song, reason=Reason.AUTODJ)
    QueueItem.objects.filter(pk=playing.pk).update(status=QueueItem.Status.PLAYING)
    queue_append(station=station, track=make_playable("Next Up", "Arik"), actor=editor)
    PlayerState.objects.create(station=station, is_playing=True, current_track=song,
                               current_reason=Reason.AUTODJ, started_at=timezone.now() - timedelta(seconds=30),
                               position=30.0, duration=180.0, volume=80)
    older = make_playable("Yesterday", "Band")
    for minutes in range(12):
        log(station, older, minutes_ago=5 + minutes * 4, requested_by=editor,
            outcome=PlayLog.Outcome.SKIPPED if minutes == 0 else PlayLog.Outcome.COMPLETED)
    return song


def test_now_playing_shows_what_is_on_air_next_and_just_played(viewer_client, station, on_air):
    data = viewer_client.get(url(station, "now-playing")).json()
    assert data["station"] == {"slug": "kol", "name": "Radio Kol", "time_zone": "Asia/Jerusalem"}
    assert (data["is_online"], data["is_playing"], data["paused"]) == (True, True, False)
    now = data["now_playing"]
    assert now["track"] == {"id": on_air.pk, "title": "Shir", "artist": "Zehava", "kind": "song",
                            "duration": 180.0}
    assert 30.0 <= now["elapsed"] < 40.0 and now["remaining"] == pytest.approx(180.0 - now["elapsed"], abs=0.05)
    assert (now["reason"], now["volume"]) == ("autodj", 80)
    assert datetime.fromisoformat(now["started_at"]) < timezone.now()
    assert data["playing_next"]["track"]["title"] == "Next Up"
    assert data["playing_next"]["requested_by"] == "editor"
    assert data["queue_length"] == 1
    history = data["song_history"]
    assert len(history) == 10
    assert history[0]["outcome"] == "skipped" and history[0]["track"]["title"] == "Yesterday"
    assert set(history[0]) == {"track", "started_at", "ended_at", "played_seconds", "outcome", "reason",
                               "requested_by"}
    assert [h["started_at"] for h in history] == sorted((h["started_at"] for h in history), reverse=True)


def test_now_playing_when_the_worker_is_down(viewer_client, station, make_playable):
    song = make_playable("Shir")
    PlayerState.objects.create(station=station, is_playing=True, current_track=song, position=3.0)
    data = viewer_client.get(url(station, "now-playing")).json()
    assert (data["is_online"], data["is_playing"], data["now_playing"]) == (False, False, None)
    assert (data["playing_next"], data["queue_length"], data["song_history"]) == (None, 0, [])


def test_public_now_playing_is_off_unless_the_station_opts_in(api_client, station):
    response = api_client.get(f"/api/v1/public/stations/{station.slug}/now-playing")
    assert response.status_code == 404 and "detail" in response.json()
    assert api_client.get("/api/v1/public/stations/nope/now-playing").status_code == 404


def test_public_now_playing_needs_no_sign_in_and_names_no_one(api_client, station, on_air):
    station.public_now_playing = True
    station.save()
    response = api_client.get(f"/api/v1/public/stations/{station.slug}/now-playing",
                              HTTP_ORIGIN="https://kol.example", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "max-age=5" in response["Cache-Control"]
    data = response.json()
    assert data["now_playing"]["track"]["title"] == "Shir"
    assert data["playing_next"]["track"]["title"] == "Next Up" and len(data["song_history"]) == 10
    assert "requested_by" not in response.content.decode() and "editor" not in response.content.decode()


# --- as-run log ---------------------------------------------------------------

@pytest.fixture
def aired(station, other_station, make_playable, editor):
    """An as-run log over two days (UTC) plus a row of another station."""
    song, jingle = make_playable("Shalom", "Kol Band"), make_playable("ID", kind=Track.Kind.JINGLE)
    day = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    rows = [
        log(station, song, 0, started_at=day, reason=Reason.SCHEDULE, note="Morning show"),
        log(station, jingle, 0, started_at=day + timedelta(minutes=4), reason=Reason.AUTODJ),
        log(station, song, 0, started_at=day + timedelta(hours=3), outcome=PlayLog.Outcome.SKIPPED,
            played_seconds=12.3456, reason=Reason.MANUAL, requested_by=editor),
        log(station, song, 0, started_at=day + timedelta(days=1), outcome=PlayLog.Outcome.FAILED,
            failure_reason="file unreadable", played_seconds=0.0, ended_at=None, title="=HYPERLINK(1)"),
    ]
    log(other_station, make_playable("Theirs", station=other_station), 0, started_at=day)
    return rows


def history(client, station, query: str = "") -> list[dict]:
    response = client.get(url(station, "history") + query)
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_history_lists_the_as_run_log_newest_first_with_filters(viewer_client, station, aired):
    rows = history(viewer_client, station)
    assert [r["id"] for r in rows] == [r.pk for r in reversed(aired)]
    assert rows[1]["requested_by"] == "editor" and rows[1]["outcome"] == "skipped"
    assert len(history(viewer_client, station, "?from=2025-05-01T09:00:00Z")) == 2
    assert len(history(viewer_client, station, "?to=2025-05-01T08:04:00%2B00:00")) == 1
    # Offsets are honoured: 11:00 in Jerusalem (UTC+3) is 08:00 UTC.
    jerusalem = "?from=2025-05-01T11:00:00%2B03:00&to=2025-05-01T11:05:00%2B03:00"
    assert len(history(viewer_client, station, jerusalem)) == 2
    assert [r["outcome"] for r in history(viewer_client, station, "?outcome=failed")] == ["failed"]
    assert [r["kind"] for r in history(viewer_client, station, "?kind=jingle")] == ["jingle"]
    assert [r["note"] for r in history(viewer_client, station, "?reason=schedule")] == ["Morning show"]
    assert len(history(viewer_client, station, f"?track={aired[0].track_id}")) == 3
    assert [r["id"] for r in history(viewer_client, station, "?ordering=started_at")] == [r.pk for r in aired]
    response = viewer_client.get(url(station, "history") + "?from=yesterday&outcome=lost")
    assert response.status_code == 400 and {"from", "outcome"} <= response.json().keys()


def test_history_csv_is_a_download_with_the_same_filters(viewer_client, station, aired):
    response = viewer_client.get(url(station, "history.csv")
                                 + "?from=2025-05-01T00:00:00Z&to=2025-05-03T00:00:00Z")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    # Filenames name the days in the station's time zone; `to` is exclusive.
    assert response["Content-Disposition"] == 'attachment; filename="kol-as-run-2025-05-01-2025-05-03.csv"'
    text = body(response)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == ["started_at", "ended_at", "played_seconds", "title", "artist", "kind", "outcome",
                       "failure_reason", "reason", "requested_by", "note"]
    assert rows[1] == ["2025-05-01T08:00:00+00:00", "2025-05-01T08:01:00+00:00", "60.00", "Shalom", "Kol Band",
                       "song", "completed", "", "schedule", "", "Morning show"]
    assert rows[3][2:] == ["12.35", "Shalom", "Kol Band", "song", "skipped", "", "manual", "editor", ""]
    assert rows[4][1] == "" and rows[4][3] == "'=HYPERLINK(1)" and rows[4][7] == "file unreadable"
    assert len(rows) == 5  # the other station's row is not there

    response = viewer_client.get(url(station, "history.csv") + "?outcome=completed&kind=song")
    rows = list(csv.reader(io.StringIO(body(response).removeprefix("\ufeff"))))
    assert [r[3] for r in rows[1:]] == ["Shalom"]
    assert response["Content-Disposition"] == 'attachment; filename="kol-as-run-2025-05-01-2025-05-01.csv"'
    newest_first = viewer_client.get(url(station, "history.csv") + "?ordering=-started_at")
    assert list(csv.reader(io.StringIO(body(newest_first))))[1][0].startswith("2025-05-02")
    assert viewer_client.get(url(station, "history.csv") + "?to=tomorrow").status_code == 400


@pytest.mark.django_db(transaction=True)
async def test_history_csv_streams_in_chunks_under_asgi(station, make_user, make_playable):
    song = await database_sync_to_async(make_playable)("Shalom")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [PlayLog(station=station, track=song, title=f"Item {n}", kind="song", reason=Reason.AUTODJ,
                    started_at=start + timedelta(minutes=3 * n), played_seconds=180.0,
                    outcome=PlayLog.Outcome.COMPLETED) for n in range(4500)]  # more than one database chunk
    await database_sync_to_async(PlayLog.objects.bulk_create)(rows)
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    token = await database_sync_to_async(Token.objects.create)(user=viewer)
    try:
        response = await AsyncClient().get(url(station, "history.csv"),
                                           headers={"Authorization": f"Token {token.key}"})
        assert response.status_code == 200 and response.is_async  # no read-it-all fallback
        chunks = [chunk async for chunk in response.streaming_content]
        assert len(chunks) > 1
        lines = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
        assert len(lines) == 4501 and lines[1][3] == "Item 0" and lines[-1][3] == "Item 4499"
        assert response["Content-Disposition"].endswith('kol-as-run-2025-01-01-2025-01-10.csv"')
    finally:
        # The test client, unlike a server, leaves the view thread's connection open.
        await sync_to_async(connections.close_all)()


def test_history_csv_answers_a_csv_accept_header(viewer_client, station, aired):
    response = viewer_client.get(url(station, "history.csv"), HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and len(body(response).splitlines()) == 5


def test_openapi_schema_documents_the_playback_api(viewer_client):
    schema = viewer_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = json.loads(schema.content)["paths"]
    for path in ("now-playing", "queue", "queue/{id}", "queue/clear", "player/skip", "player/play-now",
                 "player/commands/{id}", "history", "history.csv"):
        assert f"/api/v1/stations/{{station_slug}}/{path}" in paths, path
    assert "/api/v1/public/stations/{station_slug}/now-playing" in paths
