"""The schedule API: calendars (and sync now), calendar events, programme slots, the planned schedule."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from celery.signals import before_task_publish

from library.models import Genre, Playlist, Track
from radio.models import AuditEntry, Role
from scheduling.models import CalendarEvent, CalendarSource, ContentKind, Mode, ProgramSlot

pytestmark = pytest.mark.django_db

EVERY_DAY = list(range(7))


def url(station, *rest) -> str:
    return "/".join([f"/api/v1/stations/{station.slug}", *map(str, rest)])


def make_slot(station, name: str, start: time, end: time, **fields) -> ProgramSlot:
    fields.setdefault("weekdays", EVERY_DAY)
    fields.setdefault("content_kind", ContentKind.SHOW)
    fields.setdefault("show_name", name)
    return ProgramSlot.objects.create(station=station, name=name, start_time=start, end_time=end, **fields)


def make_event(calendar, event_id: str, starts_at: datetime, hours: float = 1.0, **fields) -> CalendarEvent:
    return CalendarEvent.objects.create(station=calendar.station, calendar=calendar, event_id=event_id,
                                        summary=fields.pop("summary", event_id), starts_at=starts_at,
                                        ends_at=starts_at + timedelta(hours=hours), **fields)


def slot_body(**changes) -> dict:
    body = {"name": "Morning", "weekdays": [0, 1, 2, 3, 4], "start_time": "08:00", "end_time": "09:00",
            "content_kind": "show", "show_name": "Boker Tov"}
    body.update(changes)
    return body


@pytest.fixture
def viewer_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    return api_client


@pytest.fixture
def editor(station, make_user):
    return make_user(Role.EDITOR, station)


@pytest.fixture
def editor_client(api_client, editor):
    api_client.force_authenticate(editor)
    return api_client


@pytest.fixture
def calendar(station) -> CalendarSource:
    return CalendarSource.objects.create(station=station, calendar_id="kol@group.calendar.google.com",
                                         name="Programme")


@pytest.fixture
def playlist(station) -> Playlist:
    return Playlist.objects.create(station=station, name="Morning Mix", slug="morning-mix")


# --- access -------------------------------------------------------------------

def read_urls(station, slot, calendar, event) -> list[str]:
    return [url(station, "slots"), url(station, "slots", slot.pk), url(station, "calendars"),
            url(station, "calendars", calendar.pk), url(station, "calendar-events"),
            url(station, "calendar-events", event.pk), url(station, "schedule"),
            url(station, "schedule", "conflicts")]


def test_anonymous_requests_get_401(api_client, station, calendar):
    slot = make_slot(station, "Morning", time(8), time(9))
    event = make_event(calendar, "e1", datetime(2026, 3, 27, 10, tzinfo=UTC))
    for address in read_urls(station, slot, calendar, event):
        response = api_client.get(address)
        assert response.status_code == 401, address
        assert "detail" in response.json()
    assert api_client.post(url(station, "slots"), slot_body(), format="json").status_code == 401
    assert api_client.post(url(station, "calendars", calendar.pk, "sync")).status_code == 401


def test_member_of_another_station_gets_403_on_everything(api_client, station, other_station, make_user,
                                                          calendar):
    api_client.force_authenticate(make_user(Role.ADMIN, other_station))
    slot = make_slot(station, "Morning", time(8), time(9))
    event = make_event(calendar, "e1", datetime(2026, 3, 27, 10, tzinfo=UTC))
    for address in read_urls(station, slot, calendar, event):
        assert api_client.get(address).status_code == 403, address
    assert api_client.patch(url(station, "slots", slot.pk), {"name": "Hijacked"},
                            format="json").status_code == 403
    assert api_client.delete(url(station, "calendars", calendar.pk)).status_code == 403
    assert api_client.post(url(station, "calendars", calendar.pk, "sync")).status_code == 403
    slot.refresh_from_db()
    assert slot.name == "Morning" and CalendarSource.objects.filter(pk=calendar.pk).exists()


def test_unknown_station_or_another_stations_slot_is_404(viewer_client, station, other_station):
    assert viewer_client.get("/api/v1/stations/nope/slots").status_code == 404
    assert viewer_client.get("/api/v1/stations/nope/schedule").status_code == 404
    foreign = make_slot(other_station, "Elsewhere", time(8), time(9))
    assert viewer_client.get(url(station, "slots", foreign.pk)).status_code == 404


def test_viewer_reads_but_cannot_change_slots_or_calendars(viewer_client, station, calendar):
    slot = make_slot(station, "Morning", time(8), time(9))
    assert viewer_client.get(url(station, "slots", slot.pk)).json()["name"] == "Morning"
    assert viewer_client.get(url(station, "calendars")).json()["count"] == 1
    response = viewer_client.post(url(station, "slots"), slot_body(), format="json")
    assert response.status_code == 403 and "editor" in response.json()["detail"]
    assert viewer_client.patch(url(station, "slots", slot.pk), {"enabled": False},
                               format="json").status_code == 403
    assert viewer_client.delete(url(station, "slots", slot.pk)).status_code == 403
    assert viewer_client.post(url(station, "calendars"), {"calendar_id": "x@group.calendar.google.com"},
                              format="json").status_code == 403
    assert viewer_client.post(url(station, "calendars", calendar.pk, "sync")).status_code == 403
    assert ProgramSlot.objects.get().enabled and CalendarSource.objects.count() == 1


# --- programme slots ------------------------------------------------------------

def test_editor_adds_changes_and_removes_a_slot_and_each_change_is_journaled(editor_client, editor, station,
                                                                            playlist):
    response = editor_client.post(url(station, "slots"), slot_body(
        weekdays=[4, 0, 2], content_kind="playlist", playlist=playlist.pk, show_name="", mode="hard",
        priority=3, first_day="2026-03-01", last_day="2026-06-30"), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["weekdays"] == [0, 2, 4] and created["playlist"] == playlist.pk
    assert (created["start_time"], created["end_time"], created["mode"]) == ("08:00:00", "09:00:00", "hard")
    slot = ProgramSlot.objects.get(pk=created["id"])
    assert slot.station == station and slot.weekdays == [0, 2, 4]

    changed = editor_client.patch(url(station, "slots", slot.pk), {"end_time": "10:30", "enabled": False},
                                  format="json")
    assert changed.status_code == 200, changed.json()
    slot.refresh_from_db()
    assert (slot.end_time, slot.enabled, slot.weekdays) == (time(10, 30), False, [0, 2, 4])

    assert editor_client.delete(url(station, "slots", slot.pk)).status_code == 204
    assert not ProgramSlot.objects.exists()
    actions = list(AuditEntry.objects.filter(station=station, actor=editor).order_by("id")
                   .values_list("action", flat=True))
    assert actions == ["programslot.add", "programslot.change", "programslot.delete"]
    assert AuditEntry.objects.get(action="programslot.change").before["end_time"] == "09:00:00"


@pytest.mark.parametrize("weekdays", [[], [7], [-1], [1, 1], ["monday"], [1.5], [True], "0,1", None,
                                      list(range(8))])
def test_bad_weekdays_are_a_400_on_weekdays(editor_client, station, weekdays):
    response = editor_client.post(url(station, "slots"), slot_body(weekdays=weekdays), format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()) == ["weekdays"]
    assert not ProgramSlot.objects.exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"priority": 2**15}, "priority"), ({"name": ""}, "name"), ({"name": "x\x00"}, "name"),
    ({"start_time": "25:00"}, "start_time"), ({"mode": "loud"}, "mode"), ({"playlist": 1.5}, "playlist"),
    ({"first_day": "2026-02-30"}, "first_day"),
])
def test_bad_slot_fields_are_a_400_naming_the_field(editor_client, station, change, field):
    editor_client.raise_request_exception = False
    response = editor_client.post(url(station, "slots"), slot_body(**change), format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]


def test_a_last_day_before_the_first_is_a_400_from_the_models_rules(editor_client, station):
    response = editor_client.post(url(station, "slots"), slot_body(first_day="2026-05-02",
                                                                    last_day="2026-05-01"), format="json")
    assert response.status_code == 400
    assert response.json() == {"last_day": ["The last day is before the first."]}


@pytest.mark.parametrize(("kind", "field"), [("playlist", "playlist"), ("track", "track"), ("genre", "genre"),
                                             ("show", "show_name")])
def test_a_slot_must_say_what_it_plays(editor_client, station, kind, field):
    response = editor_client.post(url(station, "slots"), slot_body(content_kind=kind, show_name=""),
                                  format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_another_stations_playlist_track_or_genre_is_refused(editor_client, station, other_station):
    theirs = {
        "playlist": Playlist.objects.create(station=other_station, name="Theirs", slug="theirs"),
        "track": Track.objects.create(station=other_station, title="Theirs", source=Track.Source.UPLOAD),
        "genre": Genre.objects.create(station=other_station, name="Theirs"),
    }
    for kind, row in theirs.items():
        response = editor_client.post(url(station, "slots"), slot_body(content_kind=kind, **{kind: row.pk}),
                                      format="json")
        assert response.status_code == 400, kind
        assert list(response.json()) == [kind]
        assert "on this station" in response.json()[kind][0]
    assert not ProgramSlot.objects.exists()


def test_a_slot_whose_playlist_was_deleted_can_still_be_disabled_but_not_left_half_set(editor_client, station,
                                                                                       playlist):
    slot = make_slot(station, "Mix", time(8), time(9), content_kind=ContentKind.PLAYLIST, playlist=playlist,
                     show_name="")
    playlist.delete()  # SET_NULL: the slot now names no playlist
    response = editor_client.patch(url(station, "slots", slot.pk), {"enabled": False}, format="json")
    assert response.status_code == 200, response.json()
    response = editor_client.patch(url(station, "slots", slot.pk), {"content_kind": "playlist"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["playlist"]


# --- the planned schedule ---------------------------------------------------------

def test_schedule_gives_slot_occurrences_in_utc_across_the_spring_forward(viewer_client, station):
    # Israel moves its clocks from 02:00 to 03:00 on Friday 2026-03-27.
    make_slot(station, "Morning", time(8), time(9))
    response = viewer_client.get(url(station, "schedule"), {"start": "2026-03-26T00:00:00+02:00",
                                                            "end": "2026-03-28T00:00:00+03:00"})
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["start"], data["end"], data["time_zone"]) == (
        "2026-03-25T22:00:00+00:00", "2026-03-27T21:00:00+00:00", "Asia/Jerusalem")
    assert [(e["start"], e["end"], e["source"], e["label"]) for e in data["entries"]] == [
        ("2026-03-26T06:00:00+00:00", "2026-03-26T07:00:00+00:00", "slot", "Morning"),
        ("2026-03-27T05:00:00+00:00", "2026-03-27T06:00:00+00:00", "slot", "Morning"),
    ]
    assert data["conflicts"] == [] and data["unresolved"] == [] and data["notes"] == []


def test_schedule_merges_calendar_events_and_lists_what_cannot_play(viewer_client, station, calendar):
    make_slot(station, "Music", time(10), time(12))
    day = datetime(2026, 5, 4, tzinfo=UTC)
    make_event(calendar, "live", day + timedelta(hours=8), status=CalendarEvent.Status.RESOLVED,
               content_kind=ContentKind.SHOW, ref="Live", summary="Live show")  # 11:00 in Jerusalem
    make_event(calendar, "bad", day + timedelta(hours=12), status=CalendarEvent.Status.UNRESOLVED,
               content_kind=ContentKind.PLAYLIST, ref="Nope", problem="No playlist named “Nope”.")
    make_event(calendar, "holiday", day - timedelta(hours=3), hours=24, all_day=True,
               status=CalendarEvent.Status.NOTE, summary="Holiday")
    data = viewer_client.get(url(station, "schedule"), {"start": "2026-05-04T00:00:00+03:00",
                                                        "end": "2026-05-05T00:00:00+03:00"}).json()
    assert [(e["label"], e["start"], e["end"]) for e in data["entries"]] == [
        ("Music", "2026-05-04T07:00:00+00:00", "2026-05-04T08:00:00+00:00"),
        ("Live show", "2026-05-04T08:00:00+00:00", "2026-05-04T09:00:00+00:00")]
    assert [(c["winner_label"], c["loser_label"], c["reason"]) for c in data["conflicts"]] == [
        ("Live show", "Music", "calendar over slot")]
    assert [(e["event_id"], e["problem"]) for e in data["unresolved"]] == [("bad", "No playlist named “Nope”.")]
    assert [e["summary"] for e in data["notes"]] == ["Holiday"]


def test_schedule_conflicts_shows_a_hard_slot_beating_a_soft_one(viewer_client, station):
    music = make_slot(station, "Music", time(10), time(12), priority=5)
    news = make_slot(station, "News", time(11), time(11, 30), mode=Mode.HARD, weekdays=[0])
    response = viewer_client.get(url(station, "schedule", "conflicts"), {
        "start": "2026-05-04T00:00:00+03:00", "end": "2026-05-05T00:00:00+03:00"})  # a Monday
    assert response.status_code == 200, response.json()
    data = response.json()
    assert set(data) == {"start", "end", "time_zone", "conflicts"}
    [conflict] = data["conflicts"]
    assert conflict == {
        "winner": f"slot:{news.pk}:2026-05-04T08:00:00+00:00", "winner_label": "News",
        "loser": f"slot:{music.pk}:2026-05-04T07:00:00+00:00", "loser_label": "Music",
        "start": "2026-05-04T08:00:00+00:00", "end": "2026-05-04T08:30:00+00:00",
        "outcome": "ends early", "reason": "hard over soft"}
    # Tuesday has no news: no conflict.
    tuesday = viewer_client.get(url(station, "schedule", "conflicts"), {
        "start": "2026-05-05T00:00:00+03:00", "end": "2026-05-06T00:00:00+03:00"}).json()
    assert tuesday["conflicts"] == []


def test_schedule_window_defaults_to_the_next_24_hours(viewer_client, station):
    before = datetime.now(UTC)
    data = viewer_client.get(url(station, "schedule"), {"start": "", "end": ""}).json()
    start, end = datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"])
    assert before <= start <= datetime.now(UTC) and end - start == timedelta(hours=24)
    only_start = viewer_client.get(url(station, "schedule"), {"start": "2026-05-04T00:00:00Z"}).json()
    assert only_start["end"] == "2026-05-05T00:00:00+00:00"
    # A "+" the client did not encode is read as the offset it was.
    unencoded = viewer_client.get(url(station, "schedule") + "?start=2026-05-04T03:00:00+03:00").json()
    assert unencoded["start"] == "2026-05-04T00:00:00+00:00"


@pytest.mark.parametrize(("query", "field"), [
    ({"start": "tomorrow"}, "start"),
    ({"start": "2026-05-04T00:00:00"}, "start"),  # no offset: which zone would be a guess
    ({"start": "2026-02-30T00:00:00Z"}, "start"),
    ({"end": "0001-01-01T00:00:00+03:00", "start": "2026-05-04T00:00:00Z"}, "end"),
    ({"start": "2026-05-04T00:00:00Z", "end": "2026-05-04T00:00:00Z"}, "end"),
    ({"start": "2026-05-04T00:00:00Z", "end": "2026-05-18T00:00:01Z"}, "end"),  # over 14 days
    ({"start": "\x00"}, "start"),
])
def test_bad_schedule_windows_are_a_400_naming_the_parameter(viewer_client, station, query, field):
    for path in ("schedule", "schedule/conflicts"):
        response = viewer_client.get(url(station, path), query)
        assert response.status_code == 400, (path, response.content)
        assert list(response.json()) == [field]


def test_fourteen_days_is_allowed(viewer_client, station):
    make_slot(station, "Morning", time(8), time(9))
    response = viewer_client.get(url(station, "schedule"), {"start": "2026-05-04T00:00:00+03:00",
                                                            "end": "2026-05-18T00:00:00+03:00"})
    assert response.status_code == 200 and len(response.json()["entries"]) == 14


# --- calendar events --------------------------------------------------------------

def test_calendar_events_are_listed_in_order_and_filtered(viewer_client, station, other_station, calendar):
    theirs = CalendarSource.objects.create(station=other_station, calendar_id="other@group.calendar.google.com")
    day = datetime(2026, 5, 4, tzinfo=UTC)
    late = make_event(calendar, "late", day + timedelta(hours=15), status=CalendarEvent.Status.RESOLVED)
    early = make_event(calendar, "early", day + timedelta(hours=6), status=CalendarEvent.Status.UNRESOLVED,
                       problem="No playlist named “Jazz”.", content_kind=ContentKind.PLAYLIST, ref="Jazz")
    note = make_event(calendar, "note", day, hours=24, all_day=True, status=CalendarEvent.Status.NOTE)
    make_event(calendar, "gone", day + timedelta(hours=9), status=CalendarEvent.Status.CANCELLED)
    make_event(theirs, "theirs", day + timedelta(hours=7), status=CalendarEvent.Status.UNRESOLVED)
    address = url(station, "calendar-events")

    listing = viewer_client.get(address).json()
    assert listing["count"] == 4
    assert [e["event_id"] for e in listing["results"]] == ["note", "early", "gone", "late"]
    assert [e["event_id"] for e in viewer_client.get(address, {"status": "unresolved"}).json()["results"]] == [
        "early"]
    first = viewer_client.get(address, {"status": "unresolved"}).json()["results"][0]
    assert first == {
        "id": early.pk, "calendar": calendar.pk, "event_id": "early", "recurring_event_id": "",
        "summary": "early", "description": "", "starts_at": "2026-05-04T06:00:00Z",
        "ends_at": "2026-05-04T07:00:00Z", "all_day": False, "time_zone": "", "status": "unresolved",
        "problem": "No playlist named “Jazz”.", "content_kind": "playlist", "ref": "Jazz", "track": None,
        "playlist": None, "genre": None, "mode": "soft", "fill": "rotation", "updated": None}
    # Events overlapping 08:00–16:00 UTC: the all-day note and the 09:00 and 15:00 events.
    window = viewer_client.get(address, {"start": "2026-05-04T11:00:00+03:00", "end": "2026-05-04T16:00:00Z"})
    assert [e["event_id"] for e in window.json()["results"]] == ["note", "gone", "late"]
    all_day = viewer_client.get(address, {"all_day": "true"}).json()["results"]
    assert [e["id"] for e in all_day] == [note.pk]
    assert viewer_client.get(url(station, "calendar-events", late.pk)).json()["status"] == "resolved"
    assert viewer_client.get(address, {"status": "bogus"}).status_code == 400
    assert list(viewer_client.get(address, {"start": "2026-05-04T11:00:00"}).json()) == ["start"]


def test_calendar_events_cannot_be_written(editor_client, station, calendar):
    event = make_event(calendar, "e1", datetime(2026, 5, 4, 6, tzinfo=UTC))
    assert editor_client.post(url(station, "calendar-events"), {}, format="json").status_code == 405
    assert editor_client.patch(url(station, "calendar-events", event.pk), {"summary": "x"},
                               format="json").status_code == 405
    assert editor_client.delete(url(station, "calendar-events", event.pk)).status_code == 405


# --- calendars ----------------------------------------------------------------

def test_editor_adds_changes_and_removes_a_calendar(editor_client, station, other_station):
    CalendarSource.objects.create(station=other_station, calendar_id="shared@group.calendar.google.com")
    address = url(station, "calendars")
    response = editor_client.post(address, {"calendar_id": " shared@group.calendar.google.com ",
                                            "name": "Programme", "interval_seconds": 30,
                                            "default_mode": "hard"}, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["calendar_id"], created["interval_seconds"], created["default_mode"]) == (
        "shared@group.calendar.google.com", 30, "hard")
    assert created["last_sync_at"] is None and created["last_error"] == ""
    again = editor_client.post(address, {"calendar_id": "shared@group.calendar.google.com"}, format="json")
    assert again.status_code == 400 and list(again.json()) == ["calendar_id"]
    for bad in ({"interval_seconds": 5}, {"window_days": 61}, {"priority": -(2**15) - 1},
                {"default_fill": "x"}):
        refused = editor_client.patch(f"{address}/{created['id']}", bad, format="json")
        assert refused.status_code == 400 and list(refused.json()) == list(bad), bad
    renamed = editor_client.patch(f"{address}/{created['id']}", {"name": "Main", "last_error": "x"},
                                  format="json")
    assert renamed.status_code == 200 and (renamed.json()["name"], renamed.json()["last_error"]) == ("Main", "")
    assert editor_client.delete(f"{address}/{created['id']}").status_code == 204
    assert not CalendarSource.objects.filter(station=station).exists()
    assert list(AuditEntry.objects.filter(station=station).order_by("id").values_list("action", flat=True)) == [
        "calendarsource.add", "calendarsource.change", "calendarsource.delete"]


def test_editor_asks_for_a_calendar_sync_which_is_queued_on_commit(editor_client, editor, station, calendar,
                                                                  django_capture_on_commit_callbacks):
    published: list[tuple[str, dict, dict]] = []

    def grab(sender=None, body=None, headers=None, **kwargs):
        published.append((sender, body, headers))

    before_task_publish.connect(grab, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = editor_client.post(url(station, "calendars", calendar.pk, "sync"))
    finally:
        before_task_publish.disconnect(grab)
    assert response.status_code == 202
    assert response.json() == {"detail": "Sync queued."}
    sent = [(args, headers) for name, (args, _kw, _embed), headers in published
            if name == "scheduling.tasks.calendar_sync"]
    assert [list(args) for args, _headers in sent] == [[station.pk, editor.pk]]
    assert len(callbacks) == 1
    _forget_queued(sent[0][1]["id"])


def test_a_disabled_calendar_is_not_synced(editor_client, station, calendar,
                                           django_capture_on_commit_callbacks):
    CalendarSource.objects.filter(pk=calendar.pk).update(enabled=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = editor_client.post(url(station, "calendars", calendar.pk, "sync"))
    assert response.status_code == 409 and "disabled" in response.json()["detail"]
    assert callbacks == []


def _forget_queued(task_id: str) -> None:
    """Take the message back off the broker so no later test's worker runs it."""
    from radio.celery_heartbeat import redis_client

    client = redis_client()
    for raw in client.lrange("sync", 0, -1):
        if json.loads(raw).get("headers", {}).get("id") == task_id:
            client.lrem("sync", 1, raw)


def test_openapi_schema_documents_the_schedule(viewer_client):
    response = viewer_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    for path in ("calendars", "calendars/{id}", "calendars/{id}/sync", "calendar-events",
                 "calendar-events/{id}", "slots", "slots/{id}", "schedule", "schedule/conflicts"):
        assert f"/api/v1/stations/{{station_slug}}/{path}" in paths, path
    assert {"202", "409", "503"} <= paths["/api/v1/stations/{station_slug}/calendars/{id}/sync"]["post"][
        "responses"].keys()


def test_first_and_last_day_bound_the_occurrences(viewer_client, station):
    make_slot(station, "Festival", time(20), time(2), first_day=date(2026, 5, 5), last_day=date(2026, 5, 5))
    data = viewer_client.get(url(station, "schedule"), {"start": "2026-05-04T00:00:00+03:00",
                                                        "end": "2026-05-08T00:00:00+03:00"}).json()
    # 20:00 on the 5th to 02:00 on the 6th, Jerusalem summer time (+03:00).
    assert [(e["start"], e["end"]) for e in data["entries"]] == [
        ("2026-05-05T17:00:00+00:00", "2026-05-05T23:00:00+00:00")]
