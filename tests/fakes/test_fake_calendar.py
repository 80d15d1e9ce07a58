"""The fake Google speaks Calendar v3 well enough for the real client, awkward cases included.

Every test goes through google-api-python-client built as radio.google.google_service
builds it (discovery from the fake, AuthorizedHttp over httplib2, plain HTTP).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pytest
from googleapiclient.errors import HttpError

from tests.fakes.calendar import MAX_INSTANCES
from tests.fakes.google import FakeGoogle
from tests.fakes.test_fake_google import TOKEN, error_of, service

STATION = "station@group.calendar.google.com"
FIVE_MINUTES = timedelta(minutes=5)


@pytest.fixture
def fake():
    fake = FakeGoogle().start()
    fake.allow_token(TOKEN)
    fake.calendar.add_calendar(STATION, "Asia/Jerusalem", summary="Kol Radio")
    yield fake
    fake.stop()


@pytest.fixture
def calendar(fake):
    return service(fake, "calendar", "v3")


def dec(day: int, hour: int) -> datetime:
    """Wall time in December 2026 (the station calendar's zone when naive)."""
    return datetime(2026, 12, day, hour)


def add(fake: FakeGoogle, summary: str, start: datetime | date, end: datetime | date, **kwargs) -> str:
    return fake.calendar.add_event(STATION, summary, start, end, **kwargs)


def full_list(calendar, **params) -> tuple[list[dict], list[dict]]:
    """(items, pages) following nextPageToken to the end, as a sync does."""
    items, pages, token = [], [], None
    while True:
        page = calendar.events().list(calendarId=STATION, pageToken=token, **params).execute()
        items += page.get("items", [])
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            return items, pages


def sync_token_of(pages: list[dict]) -> str:
    assert all("nextSyncToken" not in page for page in pages[:-1])
    return pages[-1]["nextSyncToken"]


def http_error(request) -> tuple[int, dict]:
    with pytest.raises(HttpError) as exc:
        request.execute()
    return exc.value.resp.status, error_of(exc.value)


def times(items: list[dict]) -> list[str]:
    return [item["start"].get("dateTime") or item["start"]["date"] for item in items]


# --- calendars and the list envelope ----------------------------------------------------------


def test_calendar_get_and_an_unknown_calendar_is_404(fake, calendar):
    assert calendar.calendars().get(calendarId=STATION).execute() | {"etag": ""} == {
        "kind": "calendar#calendar", "etag": "", "id": STATION, "summary": "Kol Radio",
        "timeZone": "Asia/Jerusalem",
        "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}}
    status, error = http_error(calendar.events().list(calendarId="nobody@group.calendar.google.com"))
    assert (status, error["errors"][0]["reason"]) == (404, "notFound")


def test_full_list_pages_and_only_the_last_page_carries_an_opaque_sync_token(fake, calendar):
    ids = [add(fake, f"Show {i}", dec(1, 8 + i), dec(1, 9 + i)) for i in range(5)]
    items, pages = full_list(calendar, maxResults=2)
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert [item["id"] for item in items] == ids
    token = sync_token_of(pages)
    assert not token.isdigit() and not pages[0]["nextPageToken"].isdigit()
    envelope = pages[0]
    assert envelope["kind"] == "calendar#events" and envelope["summary"] == "Kol Radio"
    assert envelope["timeZone"] == "Asia/Jerusalem" and envelope["accessRole"] == "owner"
    assert envelope["defaultReminders"] == [] and envelope["updated"].endswith("Z")
    first = items[0]
    assert first["start"] == {"dateTime": "2026-12-01T08:00:00+02:00", "timeZone": "Asia/Jerusalem"}
    assert first["status"] == "confirmed" and first["iCalUID"] == f"{ids[0]}@google.com"
    assert first["created"].endswith("Z") and first["etag"].startswith('"')
    assert first["organizer"]["email"] == STATION and first["htmlLink"].startswith("https://")


# --- incremental sync ---------------------------------------------------------------------------


def test_incremental_sync_returns_just_the_changes_cancellations_included(fake, calendar):
    news = add(fake, "News", dec(1, 7), dec(1, 8))
    talk = add(fake, "Talk", dec(1, 12), dec(1, 13))
    add(fake, "Quiet", dec(1, 14), dec(1, 15))
    morning = add(fake, "Morning", dec(1, 8), dec(1, 10), recurrence=["RRULE:FREQ=DAILY;COUNT=10"])
    items, pages = full_list(calendar, singleEvents=True)
    assert len(items) == 13
    token = sync_token_of(pages)

    fake.calendar.update_event(STATION, news, summary="News at seven")
    fake.calendar.cancel_event(STATION, talk)
    moved = fake.calendar.move_instance(STATION, morning, dec(3, 8), dec(3, 9), dec(3, 11))
    dropped = fake.calendar.cancel_instance(STATION, morning, dec(4, 8))
    assert (moved, dropped) == (f"{morning}_20261203T060000Z", f"{morning}_20261204T060000Z")

    changes, pages = full_list(calendar, singleEvents=True, syncToken=token)
    by_id = {item["id"]: item for item in changes}
    assert list(by_id) == [news, talk, moved, dropped]
    assert by_id[news]["summary"] == "News at seven"
    assert by_id[talk] | {"etag": ""} == {"kind": "calendar#event", "etag": "", "id": talk,
                                          "status": "cancelled"}  # minimal: showDeleted was not asked
    assert by_id[moved]["start"]["dateTime"] == "2026-12-03T09:00:00+02:00"
    assert by_id[moved]["recurringEventId"] == morning
    assert by_id[moved]["originalStartTime"] == {"dateTime": "2026-12-03T08:00:00+02:00",
                                                 "timeZone": "Asia/Jerusalem"}
    assert by_id[dropped] | {"etag": ""} == {
        "kind": "calendar#event", "etag": "", "id": dropped, "status": "cancelled", "recurringEventId": morning,
        "originalStartTime": {"dateTime": "2026-12-04T08:00:00+02:00", "timeZone": "Asia/Jerusalem"}}

    again, pages = full_list(calendar, singleEvents=True, syncToken=sync_token_of(pages))
    assert again == [] and pages[-1]["nextSyncToken"]
    detailed, _ = full_list(calendar, singleEvents=True, syncToken=token, showDeleted=True)
    assert next(item for item in detailed if item["id"] == talk)["summary"] == "Talk"


def test_without_single_events_a_series_is_one_item_and_its_exceptions_are_their_own(fake, calendar):
    morning = add(fake, "Morning", dec(1, 8), dec(1, 10), recurrence=["RRULE:FREQ=DAILY;COUNT=10"])
    dropped = fake.calendar.cancel_instance(STATION, morning, dec(4, 8))
    items, _ = full_list(calendar)
    assert [item["id"] for item in items] == [morning, dropped]
    assert items[0]["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=10"]
    # A cancelled instance of a live series is listed although showDeleted is false.
    assert items[1]["status"] == "cancelled" and items[1]["recurringEventId"] == morning


def test_a_change_between_pages_is_not_lost(fake, calendar):
    ids = [add(fake, f"Show {i}", dec(1, 8 + i), dec(1, 9 + i)) for i in range(4)]
    first = calendar.events().list(calendarId=STATION, maxResults=2).execute()
    fake.calendar.update_event(STATION, ids[0], summary="Renamed on page one")  # already served
    late = add(fake, "Added meanwhile", dec(2, 8), dec(2, 9))
    rest = calendar.events().list(calendarId=STATION, maxResults=2, pageToken=first["nextPageToken"]).execute()
    assert [item["id"] for item in first["items"] + rest["items"]] == ids  # a stable snapshot
    changes, _ = full_list(calendar, syncToken=rest["nextSyncToken"])
    assert [(item["id"], item["summary"]) for item in changes] == [
        (ids[0], "Renamed on page one"), (late, "Added meanwhile")]


def test_expired_or_unknown_sync_token_is_410_full_sync_required(fake, calendar):
    add(fake, "News", dec(1, 7), dec(1, 8))
    _, pages = full_list(calendar)
    token = sync_token_of(pages)
    fake.calendar.expire_sync_tokens()
    for stale in (token, "CPDAlvWDx70CEPDAlvWDx70CGAU="):
        status, error = http_error(calendar.events().list(calendarId=STATION, syncToken=stale))
        assert status == 410 and error["message"] == "Sync token is no longer valid, a full sync is required."
        assert error["errors"][0]["reason"] == "fullSyncRequired"
    _, pages = full_list(calendar)  # the way out: a full sync gives a fresh token
    assert full_list(calendar, syncToken=sync_token_of(pages))[0] == []


def test_parameters_calendar_refuses(fake, calendar):
    _, pages = full_list(calendar)
    token = sync_token_of(pages)
    events = calendar.events()
    status, error = http_error(events.list(calendarId=STATION, syncToken=token, timeMin="2026-12-01T00:00:00Z"))
    assert (status, error["errors"][0]["location"]) == (400, "timeMin")
    status, error = http_error(events.list(calendarId=STATION, syncToken=token, privateExtendedProperty="a=b"))
    assert (status, error["errors"][0]["location"]) == (400, "privateExtendedProperty")
    status, error = http_error(events.list(calendarId=STATION, orderBy="startTime"))
    assert (status, error["message"]) == (
        400, "The requested ordering is not available for the particular query.")
    status, error = http_error(events.list(calendarId=STATION, timeMin="2026-12-01T00:00:00"))
    assert (status, error["errors"][0]["reason"]) == (400, "badRequest")  # no offset
    status, error = http_error(events.list(calendarId=STATION, timeMin="2026-12-02T00:00:00Z",
                                           timeMax="2026-12-01T00:00:00Z"))
    assert (status, error["errors"][0]["reason"]) == (400, "timeRangeEmpty")


# --- recurrence, time zones, all-day, time windows --------------------------------------------


def test_daily_series_keeps_its_wall_clock_across_dst_and_moves_in_utc(fake, calendar):
    jerusalem = add(fake, "Morning", datetime(2026, 3, 25, 8), datetime(2026, 3, 25, 9),
                    recurrence=["RRULE:FREQ=DAILY;COUNT=4"])
    items, _ = full_list(calendar, singleEvents=True, orderBy="startTime")
    assert times(items) == ["2026-03-25T08:00:00+02:00", "2026-03-26T08:00:00+02:00",
                            "2026-03-27T08:00:00+03:00", "2026-03-28T08:00:00+03:00"]  # DST began on the 27th
    assert [item["id"] for item in items[1:3]] == [f"{jerusalem}_20260326T060000Z",
                                                   f"{jerusalem}_20260327T050000Z"]
    assert {item["originalStartTime"]["timeZone"] for item in items} == {"Asia/Jerusalem"}

    fake.calendar.add_calendar("ny@group.calendar.google.com", "America/New_York")
    fake.calendar.add_event("ny@group.calendar.google.com", "Drive time", datetime(2026, 3, 6, 8),
                            datetime(2026, 3, 6, 9), recurrence=["RRULE:FREQ=DAILY;UNTIL=20260309T235959Z"])
    listed = calendar.events().list(calendarId="ny@group.calendar.google.com", singleEvents=True,
                                    orderBy="startTime", timeZone="UTC").execute()["items"]
    assert times(listed) == ["2026-03-06T13:00:00Z", "2026-03-07T13:00:00Z",
                             "2026-03-08T12:00:00Z", "2026-03-09T12:00:00Z"]  # DST began on the 8th


def test_times_are_written_in_the_calendar_zone_while_time_zone_stays_the_events(fake, calendar):
    add(fake, "Relay from New York", dec(1, 8), dec(1, 9), time_zone="America/New_York")
    item = calendar.events().list(calendarId=STATION).execute()["items"][0]
    assert item["start"] == {"dateTime": "2026-12-01T15:00:00+02:00", "timeZone": "America/New_York"}


def test_exdate_drops_an_instance_and_an_unbounded_series_stops_at_730(fake, calendar):
    weekly = add(fake, "Weekly", dec(7, 20), dec(7, 21),
                 recurrence=["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;TZID=Asia/Jerusalem:20261214T200000"])
    items, _ = full_list(calendar, singleEvents=True)
    assert [item["id"] for item in items] == [f"{weekly}_20261207T180000Z", f"{weekly}_20261221T180000Z"]

    forever = add(fake, "Forever", datetime(2026, 1, 1, 6), datetime(2026, 1, 1, 7),
                  recurrence=["RRULE:FREQ=DAILY"])
    items, pages = full_list(calendar, singleEvents=True, maxResults=2500)
    assert len([i for i in items if i.get("recurringEventId") == forever]) == MAX_INSTANCES == 730
    fake.calendar.update_event(STATION, forever, summary="Forever, renamed")
    changes, _ = full_list(calendar, singleEvents=True, syncToken=sync_token_of(pages))
    assert len(changes) == 730 and {item["summary"] for item in changes} == {"Forever, renamed"}
    assert changes[-1]["start"]["dateTime"] == "2027-12-31T06:00:00+02:00"


def test_all_day_events_carry_dates(fake, calendar):
    holiday = add(fake, "Holiday", date(2026, 12, 24), date(2026, 12, 26))
    weekly = add(fake, "Market day", date(2026, 12, 4), date(2026, 12, 5),
                 recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20261218"])
    items, _ = full_list(calendar, singleEvents=True, orderBy="startTime")
    assert [(item["id"], item["start"], item["end"]) for item in items] == [
        (f"{weekly}_20261204", {"date": "2026-12-04"}, {"date": "2026-12-05"}),
        (f"{weekly}_20261211", {"date": "2026-12-11"}, {"date": "2026-12-12"}),
        (f"{weekly}_20261218", {"date": "2026-12-18"}, {"date": "2026-12-19"}),
        (holiday, {"date": "2026-12-24"}, {"date": "2026-12-26"})]
    assert items[0]["originalStartTime"] == {"date": "2026-12-04"}
    # All-day days are the calendar's: 25 Dec 00:00 in Jerusalem is 24 Dec 22:00 UTC.
    window = calendar.events().list(calendarId=STATION, singleEvents=True, timeMin="2026-12-25T21:00:00Z",
                                    timeMax="2026-12-25T23:00:00Z").execute()["items"]
    assert [item["id"] for item in window] == [holiday]


def test_time_window_returns_what_overlaps_it(fake, calendar):
    for summary, start_hour, end_hour in [("ends as the window opens", 8, 10), ("straddles the opening", 9, 11),
                                          ("inside", 11, 12), ("straddles the close", 12, 14),
                                          ("starts as the window closes", 13, 15)]:
        add(fake, summary, dec(1, start_hour), dec(1, end_hour))
    window = calendar.events().list(calendarId=STATION, timeMin="2026-12-01T10:00:00+02:00",
                                    timeMax="2026-12-01T11:00:00Z").execute()["items"]  # 10:00-13:00 local
    assert [item["summary"] for item in window] == ["straddles the opening", "inside", "straddles the close"]


def test_ordered_by_start_time_gives_no_sync_token(fake, calendar):
    add(fake, "Late", dec(1, 20), dec(1, 21))
    add(fake, "Early", dec(1, 6), dec(1, 7))
    page = calendar.events().list(calendarId=STATION, singleEvents=True, orderBy="startTime").execute()
    assert [item["summary"] for item in page["items"]] == ["Early", "Late"]
    assert "nextSyncToken" not in page and "nextPageToken" not in page


# --- scale -----------------------------------------------------------------------------------------


def test_ten_thousand_events_list_in_four_pages_and_ten_changes_sync_quickly(fake, calendar):
    starts = [datetime(2026, 1, 1, 6) + i * FIVE_MINUTES for i in range(10_001)]
    ids = [add(fake, f"Spot {i}", starts[i], starts[i + 1], private={"onair": "spot"}) for i in range(10_000)]
    began = time.monotonic()
    items, pages = full_list(calendar, maxResults=2500, singleEvents=True)
    listed = time.monotonic() - began
    assert len(pages) == 4 and len({item["id"] for item in items}) == 10_000
    for event_id in ids[::1000]:
        fake.calendar.update_event(STATION, event_id, description="moved by the producer")
    began = time.monotonic()
    changes, _ = full_list(calendar, maxResults=2500, singleEvents=True, syncToken=sync_token_of(pages))
    assert [item["id"] for item in changes] == ids[::1000]
    assert listed < 10 and time.monotonic() - began < 1


# --- write-back ------------------------------------------------------------------------------------


def test_write_back_insert_get_patch_update_and_delete(fake, calendar):
    _, pages = full_list(calendar)
    token = sync_token_of(pages)
    events = calendar.events()
    body = {"summary": "Playlist: evening", "start": {"dateTime": "2026-12-01T18:00:00+02:00"},
            "end": {"dateTime": "2026-12-01T19:00:00+02:00"},
            "extendedProperties": {"private": {"onair": "managed", "slot": "17"}}}
    created = events.insert(calendarId=STATION, body=body).execute()
    event_id = created["id"]
    assert created["status"] == "confirmed" and created["sequence"] == 0
    assert events.get(calendarId=STATION, eventId=event_id).execute()["summary"] == "Playlist: evening"
    managed = events.list(calendarId=STATION, privateExtendedProperty="onair=managed").execute()["items"]
    assert [item["id"] for item in managed] == [event_id]

    patched = events.patch(calendarId=STATION, eventId=event_id, body={
        "summary": "Playlist: late evening", "end": {"dateTime": "2026-12-01T20:00:00+02:00"},
        "extendedProperties": {"private": {"slot": "18"}}}).execute()
    assert patched["extendedProperties"]["private"] == {"onair": "managed", "slot": "18"}  # objects merge
    assert patched["sequence"] == 1 and patched["updated"] > created["updated"]
    assert patched["etag"] != created["etag"]
    stale = events.patch(calendarId=STATION, eventId=event_id, body={"summary": "y"})
    stale.headers["If-Match"] = created["etag"]
    status, error = http_error(stale)
    assert (status, error["errors"][0]["reason"]) == (412, "conditionNotMet")

    replaced = events.update(calendarId=STATION, eventId=event_id, body={
        "summary": "Replaced", "start": {"dateTime": "2026-12-01T18:00:00+02:00"},
        "end": {"dateTime": "2026-12-01T19:00:00+02:00"}}).execute()
    assert "extendedProperties" not in replaced  # update replaces the whole event

    assert events.delete(calendarId=STATION, eventId=event_id).execute() == ""
    status, error = http_error(events.delete(calendarId=STATION, eventId=event_id))
    assert (status, error["message"], error["errors"][0]["reason"]) == (
        410, "Resource has been deleted", "deleted")
    assert events.get(calendarId=STATION, eventId=event_id).execute()["status"] == "cancelled"
    changes, _ = full_list(calendar, syncToken=token)
    assert [(item["id"], item["status"]) for item in changes] == [(event_id, "cancelled")]


def test_write_back_refuses_what_calendar_refuses(fake, calendar):
    events = calendar.events()
    start, end = {"dateTime": "2026-12-01T18:00:00+02:00"}, {"dateTime": "2026-12-01T17:00:00+02:00"}
    status, error = http_error(events.insert(calendarId=STATION, body={"start": start, "end": end}))
    assert (status, error["errors"][0]["reason"]) == (400, "timeRangeEmpty")
    status, error = http_error(events.insert(calendarId=STATION,
                                             body={"start": start, "end": {"date": "2026-12-02"}}))
    assert (status, error["message"]) == (
        400, "Start and end times must either both be date or both be dateTime.")
    status, _ = http_error(events.insert(calendarId=STATION, body={"start": {"dateTime": "2026-12-01T18:00:00"},
                                                                  "end": {"dateTime": "2026-12-01T19:00:00"}}))
    assert status == 400  # no offset and no timeZone
    good = {"id": "onair0slot17", "start": start, "end": {"dateTime": "2026-12-01T19:00:00+02:00"}}
    events.insert(calendarId=STATION, body=good).execute()
    status, error = http_error(events.insert(calendarId=STATION, body=good))
    assert (status, error["errors"][0]["reason"]) == (409, "duplicate")
    status, _ = http_error(events.insert(calendarId=STATION, body={**good, "id": "Not_Base32hex"}))
    assert status == 400
    status, error = http_error(events.get(calendarId=STATION, eventId="nosuchevent"))
    assert (status, error["errors"][0]["reason"]) == (404, "notFound")


def test_patching_one_instance_makes_an_exception_and_the_series_keeps_the_rest(fake, calendar):
    morning = add(fake, "Morning", dec(1, 8), dec(1, 10), recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    _, pages = full_list(calendar, singleEvents=True)
    instance = f"{morning}_20261202T060000Z"
    assert calendar.events().get(calendarId=STATION, eventId=instance).execute()["recurringEventId"] == morning
    calendar.events().patch(calendarId=STATION, eventId=instance,
                            body={"summary": "Morning, special"}).execute()
    calendar.events().delete(calendarId=STATION, eventId=f"{morning}_20261203T060000Z").execute()
    items, _ = full_list(calendar, singleEvents=True)
    assert [(item["id"], item["summary"]) for item in items] == [
        (f"{morning}_20261201T060000Z", "Morning"), (instance, "Morning, special")]
    changes, _ = full_list(calendar, singleEvents=True, syncToken=sync_token_of(pages))
    assert [(item["id"], item["status"]) for item in changes] == [
        (instance, "confirmed"), (f"{morning}_20261203T060000Z", "cancelled")]


def test_a_deleted_series_comes_back_as_its_id_cancelled(fake, calendar):
    morning = add(fake, "Morning", dec(1, 8), dec(1, 10), recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    _, pages = full_list(calendar, singleEvents=True)
    fake.calendar.cancel_event(STATION, morning)
    changes, _ = full_list(calendar, singleEvents=True, syncToken=sync_token_of(pages))
    assert [(item["id"], item["status"]) for item in changes] == [(morning, "cancelled")]
    assert full_list(calendar, singleEvents=True)[0] == []


# --- faults ---------------------------------------------------------------------------------------


def test_a_silent_server_trips_the_client_timeout_and_rate_limits_look_like_googles(fake):
    calendar = service(fake, "calendar", "v3", timeout=0.3)
    fake.inject(f"/calendar/v3/calendars/{STATION.replace('@', '%40')}/events", 200, delay=1.5)
    with pytest.raises(TimeoutError):
        calendar.events().list(calendarId=STATION).execute()
    fake.inject_rate_limit("/calendar/v3/calendars", reason="rateLimitExceeded")
    status, error = http_error(calendar.events().list(calendarId=STATION))
    assert (status, error["errors"][0]["reason"]) == (403, "rateLimitExceeded")
    assert calendar.events().list(calendarId=STATION).execute()["items"] == []
