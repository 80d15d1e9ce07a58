"""Operators' commands: applied while fresh, expired (and the operators told) when they waited too long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from playback.models import PlayerCommand
from playback.services import command_finish, command_issue, commands_pending, commands_take
from radio.models import Notification, Role

pytestmark = pytest.mark.django_db

EXPIRED = PlayerCommand.Status.EXPIRED


def pressed(station, action: str, *, seconds_ago: float, now: datetime | None = None) -> PlayerCommand:
    command = command_issue(station=station, action=action)
    created = (now or timezone.now()) - timedelta(seconds=seconds_ago)
    PlayerCommand.objects.filter(pk=command.pk).update(created_at=created)
    command.refresh_from_db()
    return command


def test_a_command_older_than_the_max_age_expires_instead_of_firing(station):
    # Kol is in Asia/Jerusalem: 09:59:30 UTC in winter is 11:59:30 there.
    now = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
    skip = pressed(station, PlayerCommand.Action.SKIP, seconds_ago=30, now=now)

    assert commands_take(station=station, max_age=10, now=now) == []
    skip.refresh_from_db()
    assert skip.status == EXPIRED and skip.handled_at == now
    assert skip.result == "expired: the playback worker did not apply it within 10 s"
    note = Notification.objects.get(station=station)
    assert (note.level, note.source) == (Notification.Level.WARNING, "playback")
    assert note.message == ("“Skip”, pressed at 11:59:30, was not applied: the playback worker did not "
                            "take it within 10 s.")


def test_fresh_commands_are_returned_oldest_first_and_stay_pending(station):
    now = timezone.now()
    stale = pressed(station, PlayerCommand.Action.SKIP, seconds_ago=60, now=now)
    pause = pressed(station, PlayerCommand.Action.PAUSE, seconds_ago=3, now=now)
    volume = pressed(station, PlayerCommand.Action.VOLUME, seconds_ago=5, now=now)
    assert commands_take(station=station, max_age=10, now=now) == [volume, pause]
    assert list(commands_pending(station)) == [volume, pause]  # still to be finished by the worker
    stale.refresh_from_db()
    assert stale.status == EXPIRED


def test_a_command_is_expired_and_announced_once(station):
    now = timezone.now()
    pressed(station, PlayerCommand.Action.SKIP, seconds_ago=30, now=now)
    commands_take(station=station, max_age=10, now=now)
    commands_take(station=station, max_age=10, now=now + timedelta(seconds=5))
    assert Notification.objects.filter(station=station).count() == 1


def test_several_stale_commands_make_one_notification_that_names_them(station):
    now = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
    pressed(station, PlayerCommand.Action.SKIP, seconds_ago=3600, now=now)
    pressed(station, PlayerCommand.Action.PAUSE, seconds_ago=1800, now=now)
    commands_take(station=station, max_age=10, now=now)
    assert PlayerCommand.objects.filter(status=EXPIRED).count() == 2
    [note] = Notification.objects.filter(station=station)
    assert note.message == ("2 commands, pressed between 11:00:00 and 11:30:00, were not applied: the "
                            "playback worker did not take them within 10 s (Skip, Pause).")


def test_a_command_from_another_day_shows_its_date(station):
    now = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
    pressed(station, PlayerCommand.Action.STOP, seconds_ago=86400, now=now)
    commands_take(station=station, max_age=10, now=now)
    assert "pressed at 2026-11-29 12:00," in Notification.objects.get().message


def test_operators_are_told_in_the_station_language(station):
    station.language = "he"
    station.save()
    pressed(station, PlayerCommand.Action.SKIP, seconds_ago=30)
    commands_take(station=station, max_age=10)
    message = Notification.objects.get().message
    assert "דלג" in message and "Skip" not in message
    assert "expired" not in PlayerCommand.objects.get().result


def test_finishing_an_expired_command_changes_nothing(station):
    skip = pressed(station, PlayerCommand.Action.SKIP, seconds_ago=30)
    commands_take(station=station, max_age=10)
    before = PlayerCommand.objects.values().get(pk=skip.pk)
    assert command_finish(skip, ok=True, result="skipped") is False
    assert PlayerCommand.objects.values().get(pk=skip.pk) == before


def test_a_fresh_command_is_finished_once(station):
    play = pressed(station, PlayerCommand.Action.PLAY, seconds_ago=1)
    [taken] = commands_take(station=station, max_age=10)
    assert command_finish(taken, ok=True, result="started") is True
    assert command_finish(taken, ok=False, result="again") is False
    play.refresh_from_db()
    assert (play.status, play.result) == (PlayerCommand.Status.DONE, "started")


def test_the_api_shows_an_expired_command_as_expired(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    skip = pressed(station, PlayerCommand.Action.SKIP, seconds_ago=30)
    commands_take(station=station, max_age=10)
    base = f"/api/v1/stations/{station.slug}/player/commands"
    data = api_client.get(f"{base}/{skip.pk}").json()
    assert (data["status"], data["result"]) == (
        "expired", "expired: the playback worker did not apply it within 10 s")
    assert api_client.get(f"{base}?status=expired").json()["count"] == 1

