"""The control page in headless Chromium against the real ASGI server: now playing, queue, transport.

No playback worker runs here: a live worker lease and a PlayerState stand in for it, and
the commands the page sends are checked in the database.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from library.models import Track
from library.services import track_import_file
from playback.models import PlayerCommand, PlayerState, QueueItem, Reason
from playback.services import playback_lease_key, queue_append
from radio.models import Role, Station
from radio.services import lease_acquire
from tests.browser.test_station_page import SCREENSHOTS, _sign_in, browser, live_url  # noqa: F401
from tests.library.audio import make_tone

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def process_env(process_env):
    # The stand-in worker lease does not beat: keep it "alive" for the server under test.
    process_env["PLAYBACK_STALE_SECONDS"] = "3600"
    return process_env


@pytest.fixture
def tone(tmp_path):
    return make_tone(tmp_path / "tone.mp3", seconds=1.0)


def playable(station, tone, title: str, artist: str = "", **fields) -> Track:
    track = track_import_file(station=station, path=tone, source=Track.Source.UPLOAD,
                              original_name=f"{title}.mp3", hints={"title": title, "artist": artist})
    Track.objects.filter(pk=track.pk).update(**{"analysis": Track.Analysis.OK, **fields})
    track.refresh_from_db()
    return track


@pytest.fixture
def on_air(station, tone):
    """The worker is up and 'Shir' by Zehava is 30 s into its 180 s; 'Waiting' is queued."""
    Station.objects.exclude(pk=station.pk).delete()  # one station: sign-in lands on its page
    assert lease_acquire(key=playback_lease_key(station), owner="test:1:abc", stale_after=3600, station=station)
    song = playable(station, tone, "Shir", "Zehava", duration=180.0)
    PlayerState.objects.create(station=station, is_playing=True, current_track=song,
                               current_reason=Reason.AUTODJ, started_at=timezone.now() - timedelta(seconds=30),
                               position=30.0, duration=180.0, volume=70)
    queue_append(station=station, track=playable(station, tone, "Waiting", "Someone"))
    return song


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met within the time limit")


def test_editor_queues_a_track_from_search_sees_it_live_and_skips(browser, live_url, station, make_user,  # noqa: F811
                                                                  on_air, tone):
    make_user(Role.EDITOR, station, username="editor")
    playable(station, tone, "Boker Tov", "Kol Band")
    page = _sign_in(browser, live_url, "editor")
    assert page.url.endswith(f"/stations/{station.slug}/")
    page.wait_for_selector("#live-state.on", timeout=10_000)  # WebSocket is up

    assert page.inner_text("#np-title") == "Shir" and page.inner_text("#np-artist") == "Zehava"
    assert page.inner_text("#np-state") == "On air"
    assert page.inner_text("#worker-state") == "running"
    first = page.inner_text("#np-elapsed")
    page.wait_for_function(f"document.getElementById('np-elapsed').textContent !== {first!r}", timeout=5_000)
    assert page.inner_text("#np-remaining").startswith("-2:")
    assert page.input_value("#volume") == "70"
    assert "Waiting" in page.inner_text("#queue-list")

    page.fill("#track-search", "boker")
    result = page.wait_for_selector("#search-results li:has-text('Boker Tov')", timeout=10_000)
    result.query_selector("button[data-action=end]").click()
    # The socket is open, so the page does not re-read the queue itself: this is `queue_update`.
    page.wait_for_selector("#queue-list li:nth-child(2):has-text('Boker Tov')", timeout=10_000)
    assert "editor" in page.inner_text("#queue-list li:nth-child(2)")
    assert [i.track.title for i in QueueItem.objects.order_by("position")] == ["Waiting", "Boker Tov"]

    page.click("#queue-list li:nth-child(2) button[data-action=up]")
    page.wait_for_selector("#queue-list li:nth-child(1):has-text('Boker Tov')", timeout=10_000)

    page.click("#transport button[data-command=skip]")
    command = wait_for(lambda: PlayerCommand.objects.filter(action="skip").first())
    assert command.status == PlayerCommand.Status.PENDING and command.requested_by.username == "editor"
    page.wait_for_selector("#control-message:has-text('Sent to the player.')")

    page.click("#queue-list li:nth-child(1) button[data-action=remove]")
    page.wait_for_function("!document.getElementById('queue-list').textContent.includes('Boker Tov')",
                           timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "control-en.png"), full_page=True)


def test_control_page_in_hebrew_is_right_to_left(browser, live_url, station, make_user, on_air):  # noqa: F811
    make_user(Role.EDITOR, station, username="editor")
    page = _sign_in(browser, live_url, "editor")
    page.select_option("#language-form select", "he")
    page.wait_for_load_state()
    page.wait_for_selector("html[dir=rtl]")
    page.wait_for_selector("#live-state.on", timeout=10_000)
    assert page.inner_text("#np-title") == "Shir"
    # The progress bar fills from the right in Hebrew (logical CSS properties).
    track_box = page.locator("#np-progress").bounding_box()
    fill_box = page.locator("#np-fill").bounding_box()
    assert fill_box["width"] > 0
    assert abs((fill_box["x"] + fill_box["width"]) - (track_box["x"] + track_box["width"])) < 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "control-he.png"), full_page=True)


def test_viewer_sees_the_state_and_queue_without_controls(station, make_user, on_air):
    client = Client()
    client.force_login(make_user(Role.VIEWER, station))
    page = client.get(f"/stations/{station.slug}/").content.decode()
    assert 'id="np-title">Shir<' in page and "Zehava" in page and "Waiting" in page
    assert 'id="playback-status"' in page  # the snapshot the script starts from
    for control in ('id="transport"', 'id="add-to-queue"', 'data-action="remove"', 'data-command="skip"'):
        assert control not in page
