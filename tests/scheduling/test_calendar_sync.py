"""Calendar sync through the real Google client against the fake Calendar (tests/fakes/calendar.py):
full and incremental sync, 410, recurring series across DST with moved and cancelled instances,
all-day notes, unresolved events kept and notified, faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from library.models import Genre, Playlist, Track
from radio.models import Notification, SyncRun
from scheduling.calendar_sync import calendar_sync_run
from scheduling.models import CalendarEvent, CalendarSource, Mode
from scheduling.planner import plan
from tests.fakes.google import FakeGoogle

pytestmark = pytest.mark.django_db

CAL = "kol-programme@group.calendar.google.com"
JLM = ZoneInfo("Asia/Jerusalem")
NOW = datetime(2026, 3, 20, 6, 0, tzinfo=UTC)  # a week before Jerusalem's spring forward (27 March)


@pytest.fixture
def fake(settings):
    fake = FakeGoogle().start()
    settings.GOOGLE_API_ENDPOINT = fake.url
    settings.GOOGLE_OAUTH_ENDPOINT = fake.url
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "client-id"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "client-secret"
    settings.GOOGLE_API_RETRIES = 1
    fake.calendar.add_calendar(CAL, time_zone="Asia/Jerusalem")
    yield fake
    fake.stop()


@pytest.fixture
def source(station, fake):
    from radio.google import SCOPES, encrypt_token
    from radio.models import GoogleCredential

    GoogleCredential.objects.create(station=station, email="studio@kol.fm", scopes=SCOPES,
                                    refresh_token_encrypted=encrypt_token(fake.issue_refresh_token()))
    return CalendarSource.objects.create(station=station, calendar_id=CAL, name="Programme")


def sync(station, now=NOW) -> SyncRun:
    run = calendar_sync_run(station=station, now=now)
    assert run is not None
    return run


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=JLM)


def rows(source) -> dict[str, CalendarEvent]:
    return {e.summary: e for e in CalendarEvent.objects.filter(calendar=source)}


def test_a_full_sync_mirrors_events_with_what_they_ask_for(station, source, fake, make_playable):
    jazz = Genre.objects.create(station=station, name="Jazz")
    Playlist.objects.create(station=station, name="Morning Mix", slug="morning-mix")
    news = make_playable("News at 8", kind=Track.Kind.NEWSFLASH)
    fake.calendar.add_event(CAL, "News", local(21, 8), local(21, 8, 5),
                            private={"onair_content_id": str(news.pk), "onair_kind": "newsflash",
                                     "onair_mode": "hard"})
    fake.calendar.add_event(CAL, "Jazz hour", local(21, 20), local(21, 21),
                            description="<p>Tonight's jazz</p><p>play: genre Jazz<br>mode: soft</p>")
    fake.calendar.add_event(CAL, "Morning Mix", local(22, 7), local(22, 9))  # named like a playlist
    fake.calendar.add_event(CAL, "Mystery", local(22, 12), local(22, 13), description="play: playlist Nope")
    fake.calendar.add_event(CAL, "Station birthday", datetime(2026, 3, 23).date(),
                            datetime(2026, 3, 24).date(), all_day=True)
    fake.calendar.add_event(CAL, "Far away", local(21, 8) + timedelta(days=40),
                            local(21, 9) + timedelta(days=40))  # outside the 14-day window
    run = sync(station)
    assert run.status == SyncRun.Status.OK, run.error
    got = rows(source)
    assert set(got) == {"News", "Jazz hour", "Morning Mix", "Mystery", "Station birthday"}
    assert got["News"].status == "resolved" and got["News"].track == news and got["News"].mode == Mode.HARD
    assert got["News"].starts_at == local(21, 8).astimezone(UTC)
    assert got["Jazz hour"].genre == jazz and got["Jazz hour"].mode == Mode.SOFT
    assert got["Morning Mix"].playlist.slug == "morning-mix"
    assert got["Mystery"].status == "unresolved" and "Nope" in got["Mystery"].problem
    assert got["Station birthday"].status == "note" and got["Station birthday"].all_day
    # The unplayable event is kept, flagged and notified; nothing is dropped.
    warning = Notification.objects.get(station=station, source="calendar")
    assert "Mystery" in warning.message and warning.level == "warning"
    timeline = plan(station, NOW, NOW + timedelta(days=3))
    assert [e.label for e in timeline.entries] == ["News", "Jazz hour", "Morning Mix"]
    assert [e.summary for e in timeline.unresolved] == ["Mystery"]
    assert [e.summary for e in timeline.notes] == ["Station birthday"]
    source.refresh_from_db()
    assert source.time_zone == "Asia/Jerusalem" and source.last_error == ""


def test_a_daily_series_keeps_its_wall_clock_time_across_the_spring_change(station, source, fake,
                                                                           make_playable):
    show = make_playable("Boker", kind=Track.Kind.SHOW, show_name="Boker Tov")
    series = fake.calendar.add_event(CAL, "Boker Tov", local(20, 8), local(20, 9),
                                     time_zone="Asia/Jerusalem", recurrence=["RRULE:FREQ=DAILY;COUNT=20"],
                                     description="play: show Boker Tov")
    fake.calendar.move_instance(CAL, series, local(24, 8), local(24, 10), local(24, 11))
    fake.calendar.cancel_instance(CAL, series, local(25, 8))
    assert sync(station).status == SyncRun.Status.OK
    events = CalendarEvent.objects.filter(calendar=source, recurring_event_id=series).order_by("starts_at")
    live = [e for e in events if e.status == "resolved"]
    assert all(e.ref == "Boker Tov" and e.content_kind == "show" for e in live)
    starts = {e.starts_at.astimezone(JLM).date().day: e.starts_at for e in live}
    assert starts[26] == datetime(2026, 3, 26, 6, 0, tzinfo=UTC)  # 08:00 at +02:00
    assert starts[28] == datetime(2026, 3, 28, 5, 0, tzinfo=UTC)  # 08:00 at +03:00
    assert starts[24] == local(24, 10).astimezone(UTC)  # the moved instance
    assert 25 not in starts  # the cancelled one is not on air
    assert show.pk  # the show is resolved by its name on its tracks


def test_incremental_sync_takes_only_changes_and_a_410_falls_back_to_a_full_sync(station, source, fake,
                                                                                   make_playable):
    Playlist.objects.create(station=station, name="Drive Time", slug="drive-time")
    ids = [fake.calendar.add_event(CAL, f"Drive Time {n}", local(21 + n, 17), local(21 + n, 19),
                                   description="play: playlist Drive Time") for n in range(5)]
    assert sync(station).status == SyncRun.Status.OK
    fake.calendar.update_event(CAL, ids[0], description="play: playlist Missing")
    fake.calendar.cancel_event(CAL, ids[1])
    fake.calendar.update_event(CAL, ids[2], start=local(23, 18), end=local(23, 20))
    before = len(fake.requests)
    run = sync(station, NOW + timedelta(minutes=1))
    assert run.status == SyncRun.Status.OK, run.error
    lists = [r for r in fake.requests[before:] if r.path.endswith("/events")]
    assert len(lists) == 1 and lists[0].arg("syncToken") and not lists[0].arg("timeMin")
    got = rows(source)
    assert got["Drive Time 0"].status == "unresolved" and "Missing" in got["Drive Time 0"].problem
    assert got["Drive Time 1"].status == "cancelled"
    assert got["Drive Time 2"].starts_at == local(23, 18).astimezone(UTC)
    assert run.counts.get("changed") == 2 and run.counts.get("cancelled") == 1
    # Google forgets the sync token: 410, and the run does a full sync instead, still correct.
    fake.calendar.expire_sync_tokens()
    fake.calendar.update_event(CAL, ids[3], summary="Drive Time 3 (long)")
    run = sync(station, NOW + timedelta(minutes=2))
    assert run.status == SyncRun.Status.OK and run.counts.get("full_resyncs") == 1
    assert "Drive Time 3 (long)" in rows(source)
    assert CalendarEvent.objects.filter(calendar=source, status="resolved").count() == 3


def test_a_deleted_series_cancels_every_instance(station, source, fake):
    Genre.objects.create(station=station, name="Jazz")
    series = fake.calendar.add_event(CAL, "Jazz nightly", local(20, 22), local(20, 23),
                                     time_zone="Asia/Jerusalem", recurrence=["RRULE:FREQ=DAILY"],
                                     description="play: genre Jazz")
    sync(station)
    instances = CalendarEvent.objects.filter(calendar=source, recurring_event_id=series, status="resolved")
    assert instances.count() >= 14
    fake.calendar.cancel_event(CAL, series)
    assert sync(station, NOW + timedelta(minutes=1)).status == SyncRun.Status.OK
    assert not CalendarEvent.objects.filter(calendar=source, status="resolved").exists()


def test_google_failing_fails_the_run_and_keeps_the_rows(station, source, fake):
    Genre.objects.create(station=station, name="Jazz")
    fake.calendar.add_event(CAL, "Jazz", local(21, 20), local(21, 21), description="play: genre Jazz")
    sync(station)
    fake.inject("/calendar/v3/", 503, times=10)
    run = sync(station, NOW + timedelta(minutes=1))
    assert run.status == SyncRun.Status.FAILED and "503" in run.error and run.retry_after
    assert rows(source)["Jazz"].status == "resolved"
    source.refresh_from_db()
    assert "503" in source.last_error


def test_write_back_mirrors_slots_as_managed_events_that_are_never_played_twice(station, source, fake,
                                                                                   make_playable):
    from datetime import time

    from django.utils import timezone

    from scheduling.models import ContentKind, ProgramSlot

    news = make_playable("News", kind=Track.Kind.NEWSFLASH)
    last_day = timezone.localdate() + timedelta(days=200)
    source.write_back = True
    source.save()
    slot = ProgramSlot.objects.create(station=station, name="News on the hour", weekdays=[0, 2, 4],
                                      start_time=time(8, 0), end_time=time(8, 5),
                                      content_kind=ContentKind.TRACK, track=news, mode=Mode.HARD,
                                      last_day=last_day)
    run = sync(station)
    assert run.status == SyncRun.Status.OK and run.counts.get("written") == 1, (run.error, run.counts)
    slot.refresh_from_db()
    event = fake.calendar.event(CAL, slot.mirror_event_id)
    assert event["summary"] == "News on the hour"
    assert event["recurrence"] == [f"RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL={last_day:%Y%m%d}T235959Z"]
    assert event["start"]["timeZone"] == "Asia/Jerusalem" and "T08:00:00" in event["start"]["dateTime"]
    assert event["extendedProperties"]["private"]["onair_slot"] == str(slot.pk)
    # The next sync reads the managed event's instances back and does not play them as events.
    run = sync(station, NOW + timedelta(minutes=1))
    assert run.status == SyncRun.Status.OK and not run.counts.get("written")
    assert not CalendarEvent.objects.filter(calendar=source).exists()
    # A changed slot rewrites its event; a removed slot removes it.
    slot.name = "News"
    slot.save()
    assert sync(station, NOW + timedelta(minutes=2)).counts.get("rewritten") == 1
    assert fake.calendar.event(CAL, slot.mirror_event_id)["summary"] == "News"
    slot.delete()
    assert sync(station, NOW + timedelta(minutes=3)).counts.get("unwritten") == 1
    assert fake.calendar.event(CAL, slot.mirror_event_id)["status"] == "cancelled"


def test_beat_queues_a_sync_only_for_calendars_whose_interval_has_passed(station, other_station, source, fake):
    from celery.signals import before_task_publish
    from django.utils import timezone

    from scheduling.tasks import calendar_sync_due
    from tests.scheduling.test_api import _forget_queued

    other = CalendarSource.objects.create(station=other_station, calendar_id="other@group.calendar.google.com",
                                          interval_seconds=60)
    CalendarSource.objects.filter(pk=source.pk).update(last_sync_at=timezone.now() - timedelta(seconds=30))
    CalendarSource.objects.filter(pk=other.pk).update(last_sync_at=timezone.now() - timedelta(seconds=61))
    published = []

    def grab(sender=None, body=None, headers=None, **kwargs):
        published.append((sender, body[0], headers["id"]))

    before_task_publish.connect(grab, weak=False)
    try:
        assert calendar_sync_due() == {"stations": [other_station.pk]}
    finally:
        before_task_publish.disconnect(grab)
    assert [(name, list(args)) for name, args, _id in published] == [
        ("scheduling.tasks.calendar_sync", [other_station.pk])]
    for _name, _args, task_id in published:
        _forget_queued(task_id)
    # A failed attempt counts for the interval too: a Google outage is not asked every beat tick.
    fake.inject("/calendar/v3/", 503, times=10)
    before = timezone.now()
    assert sync(station).status == SyncRun.Status.FAILED
    source.refresh_from_db()
    assert source.last_sync_at >= before
