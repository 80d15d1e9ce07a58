"""GET /api/v1/stations/<slug>/timeline: the programme merged with the queue, for members."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.utils import timezone

from playback import services
from radio.models import Role
from scheduling.models import ContentKind, Mode, ProgramSlot

pytestmark = pytest.mark.django_db

URL = "/api/v1/stations/kol/timeline"


def test_members_see_the_programme_and_the_queue_before_the_next_start(station, make_user, api_client,
                                                                        make_playable):
    song, news = make_playable("Song"), make_playable("News", kind="newsflash")
    services.queue_append(station=station, track=song)
    ProgramSlot.objects.create(station=station, name="News", weekdays=list(range(7)), start_time=time(0, 0),
                               end_time=time(0, 5), content_kind=ContentKind.TRACK, track=news,
                               mode=Mode.HARD)
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    now = timezone.now()
    response = api_client.get(URL, {"start": now.isoformat(), "end": (now + timedelta(days=2)).isoformat()})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["time_zone"] == "Asia/Jerusalem"
    assert len(data["entries"]) == 2  # midnight in Jerusalem, on two days
    first = data["entries"][0]
    assert first["source"] == "slot" and first["mode"] == "hard" and first["label"] == "News"
    assert first["start"].endswith("+00:00")  # instants in UTC
    assert [q["track"] for q in data["queue"]] == [song.pk]
    assert data["conflicts"] == [] and data["unresolved"] == []


def test_a_bad_window_is_a_400_with_field_errors(station, make_user, api_client):
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    assert api_client.get(URL, {"start": "tomorrow"}).json()["start"]
    assert api_client.get(URL, {"start": "2026-12-01T08:00:00"}).json()["start"]  # no offset
    response = api_client.get(URL, {"start": "2026-12-01T08:00:00Z", "end": "2026-12-31T08:00:00Z"})
    assert response.status_code == 400 and response.json()["end"]


def test_strangers_and_anonymous_get_nothing(station, other_station, make_user, api_client):
    assert api_client.get(URL).status_code in (401, 403)
    api_client.force_authenticate(make_user(Role.ADMIN, other_station))
    assert api_client.get(URL).status_code in (403, 404)
