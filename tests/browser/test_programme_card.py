"""The station page's programme card in headless Chromium: live over the socket, in station time."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.utils import timezone

from radio.models import Role, Station
from scheduling.models import CalendarEvent, CalendarSource, ContentKind, Mode, ProgramSlot
from tests.browser.test_station_page import SCREENSHOTS, _sign_in, browser, live_url  # noqa: F401
from tests.playback.conftest import make_playable, tone_file  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

JERUSALEM = ZoneInfo("Asia/Jerusalem")
T = TypeVar("T")


def _committed_elsewhere(write: Callable[[], T]) -> T:
    """Run `write` in one transaction on another thread, as another process would (the admin, a
    calendar sync): the slot signal's `schedule_update` goes out when it commits. Not on this
    thread: Playwright's event loop runs here, and the channel-layer send cannot."""
    def run() -> T:
        try:
            with transaction.atomic():
                return write()
        finally:
            connection.close()  # that thread's own connection

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def _daily_slot(station, track, *, in_hours: int, **fields) -> ProgramSlot:
    """A slot every day, `in_hours` from now (Jerusalem wall clock, on the minute), for an hour."""
    begins = (timezone.localtime(timezone.now(), JERUSALEM) + timedelta(hours=in_hours)).replace(
        second=0, microsecond=0)
    return ProgramSlot.objects.create(station=station, weekdays=list(range(7)), start_time=begins.time(),
                                      end_time=(begins + timedelta(hours=1)).time(),
                                      content_kind=ContentKind.TRACK, track=track, **fields)


@pytest.fixture
def viewer(station, make_user):
    Station.objects.exclude(pk=station.pk).delete()  # one station: sign-in lands on its page
    return make_user(Role.VIEWER, station, username="viewer")


def test_a_new_slot_appears_on_the_programme_card_without_a_reload(browser, live_url, station, viewer,  # noqa: F811
                                                                   make_playable):  # noqa: F811
    track = make_playable("Top of the hour", kind="newsflash")
    page = _sign_in(browser, live_url, "viewer")
    # A fake clock (it runs on its own until moved) for the 5-minute re-read below: installed
    # before the page's script sets its timers.
    page.clock.install()
    page.reload()
    page.wait_for_selector("#live-state.on", timeout=10_000)  # WebSocket is up
    assert "Nothing scheduled in the next 24 hours" in page.inner_text("#programme-list")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    slot = _committed_elsewhere(lambda: _daily_slot(station, track, in_hours=2, name="Hourly news",
                                                    mode=Mode.HARD))

    entry = page.wait_for_selector("#programme-list li.programme-entry:has-text('Hourly news')", timeout=10_000)
    assert page.evaluate("window.loadedOnce") is True
    # Station time (Jerusalem), whatever the browser's zone; the range reads start–end.
    times = entry.query_selector(".p-when span[dir=ltr]").inner_text()
    assert times == f"{slot.start_time:%H:%M}–{slot.end_time:%H:%M}"
    assert entry.query_selector(".mode-badge.hard").inner_text() == "On the second"
    assert entry.query_selector(".p-source").inner_text() == "Programme slot"
    assert page.locator("#programme-list li.empty").count() == 0
    assert page.is_hidden("#programme-problems")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "programme-en.png"), full_page=True)

    # Disabled without a signal (no schedule_update): the 5-minute re-read drops it.
    ProgramSlot.objects.filter(pk=slot.pk).update(enabled=False)
    page.clock.fast_forward("05:01")
    page.wait_for_selector("#programme-list li.empty", timeout=10_000)


def test_hebrew_card_flags_what_cannot_play_and_keeps_times_left_to_right(browser, live_url, station,  # noqa: F811
                                                                          viewer, make_playable):  # noqa: F811
    track = make_playable("Top of the hour", kind="newsflash")
    page = _sign_in(browser, live_url, "viewer")
    page.select_option("#language-form select", "he")
    page.wait_for_load_state()
    page.wait_for_selector("html[dir=rtl]")
    page.wait_for_selector("#live-state.on", timeout=10_000)
    assert page.is_hidden("#programme-problems") and page.is_hidden("#programme-today")

    def programme() -> tuple[ProgramSlot, CalendarEvent]:
        calendar = CalendarSource.objects.create(station=station, calendar_id="studio@calendar.google.com")
        now = timezone.now().replace(second=0, microsecond=0)
        midnight = datetime.combine(timezone.localdate(now, JERUSALEM), datetime.min.time(), tzinfo=JERUSALEM)
        CalendarEvent.objects.create(station=station, calendar=calendar, event_id="day", summary="יום בחירות",
                                     starts_at=midnight, ends_at=midnight + timedelta(days=1), all_day=True,
                                     status=CalendarEvent.Status.NOTE)
        event = CalendarEvent.objects.create(
            station=station, calendar=calendar, event_id="mayor", summary="ראיון עם ראש העיר",
            starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=1, minutes=30),
            status=CalendarEvent.Status.UNRESOLVED, problem="No track or playlist named 'mayor'.")
        return _daily_slot(station, track, in_hours=3, name="מהדורה", mode=Mode.SOFT), event

    slot, event = _committed_elsewhere(programme)

    entry = page.wait_for_selector("#programme-list li.programme-entry:has-text('מהדורה')", timeout=10_000)
    times = entry.query_selector(".p-when span[dir=ltr]")
    assert times.inner_text() == f"{slot.start_time:%H:%M}–{slot.end_time:%H:%M}"
    # Right to left: the times on the right, the label to their left; inside, start before end.
    box = {part: entry.query_selector(f".p-{part}").bounding_box() for part in ("when", "label")}
    assert box["when"]["x"] > box["label"]["x"]
    start_box, end_box = [t.bounding_box() for t in times.query_selector_all("time")]
    assert start_box["x"] < end_box["x"]
    # What cannot play is flagged with its time and problem; today's all-day note is listed.
    assert page.is_visible("#programme-problems")
    problem = page.inner_text("#programme-unresolved li")
    assert event.summary in problem and "No track or playlist named 'mayor'." in problem
    assert f"{timezone.localtime(event.starts_at, JERUSALEM):%H:%M}" in problem
    assert page.is_visible("#programme-today") and "יום בחירות" in page.inner_text("#programme-notes")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "programme-he.png"), full_page=True)
