"""How Drive runs report Google's errors, through the real client against the fake Google."""

from __future__ import annotations

import pytest

from library.drive import drive_sync_run
from library.models import Track
from radio.models import SyncRun

pytestmark = pytest.mark.django_db


def test_drive_rate_limit_403s_are_retried_and_the_run_succeeds(connected_station, drive_root,
                                                                fake_google, mp3):
    fake_google.drive.add_file("a.mp3", drive_root, mp3("A"))
    fake_google.inject_rate_limit("/drive/v3/files", times=2)
    run = drive_sync_run(station=connected_station)
    assert run.status == SyncRun.Status.OK, run.error
    assert Track.objects.count() == 1
    assert all(fault.remaining == 0 for fault in fake_google.faults)  # both were refused


def test_persistent_drive_rate_limit_is_reported_as_a_rate_limit_and_retried_later(
        connected_station, drive_root, fake_google, mp3, settings):
    settings.GOOGLE_API_RETRIES = 1
    fake_google.drive.add_file("a.mp3", drive_root, mp3("A"))
    fake_google.inject_rate_limit("/drive/v3/changes", times=2)
    run = drive_sync_run(station=connected_station)
    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("Google rate limit (HTTP 403)")
    assert "User Rate Limit Exceeded" in run.error and "Share the Drive folder" not in run.error
    assert run.retry_after  # the task queues it again
    assert fake_google.count("GET", "/drive/v3/changes") == 2  # tried, backed off, tried again
    assert drive_sync_run(station=connected_station).status == SyncRun.Status.OK


def test_a_real_permission_403_is_still_an_access_problem(connected_station, drive_root, fake_google):
    fake_google.inject("/drive/v3/changes", 403, times=1)
    run = drive_sync_run(station=connected_station)
    assert run.status == SyncRun.Status.FAILED and run.retry_after is None
    assert "refused access (HTTP 403)" in run.error and "Share the Drive folder" in run.error
