"""Playback in the admin: queue removal through the service, a read-only as-run log with CSV export,
read-only commands and the emergency playlist, all scoped to the user's stations."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from playback.models import EmergencyTrack, PlayerCommand, PlayLog, QueueItem, Reason
from playback.services import command_issue, queue_append
from radio.models import AuditEntry, Membership, Role, Station

pytestmark = pytest.mark.django_db

QUEUE = "/admin/playback/queueitem/"
LOG = "/admin/playback/playlog/"
EMERGENCY = "/admin/playback/emergencytrack/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def editor(station, make_user):
    return make_user(Role.EDITOR, station, username="editor", is_staff=True)


@pytest.fixture
def viewer(station, make_user):
    """A viewer of this station who curates another one: only editors and admins enter the admin."""
    user = make_user(Role.VIEWER, station, username="viewer")
    elsewhere = Station.objects.create(name="Elsewhere FM", slug="elsewhere")
    Membership.objects.create(user=user, station=elsewhere, role=Role.EDITOR)
    return user


def aired(station, track, hours: int, **fields) -> PlayLog:
    started = datetime(2025, 5, 1, 6, 0, tzinfo=UTC) + timedelta(hours=hours)
    return PlayLog.objects.create(station=station, track=track, title=track.title, artist=track.artist,
                                  kind=track.kind, started_at=started, ended_at=started + timedelta(minutes=3),
                                  played_seconds=180.0, outcome=PlayLog.Outcome.COMPLETED,
                                  reason=Reason.AUTODJ, **fields)


def test_editor_removes_a_queued_item_through_the_queue_service(editor, station, make_playable):
    item = queue_append(station=station, track=make_playable("Shalom"))
    client = signed_in(editor)
    listing = client.get(QUEUE)
    assert listing.status_code == 200 and "Shalom" in listing.content.decode()
    assert client.get(f"{QUEUE}{item.pk}/delete/").status_code == 200
    response = client.post(f"{QUEUE}{item.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not QueueItem.objects.exists()
    entry = AuditEntry.objects.get(action="queue.remove")
    assert entry.actor == editor and entry.object_id == str(item.pk)


def test_the_item_on_air_is_not_deleted_from_the_admin(editor, station, make_playable):
    on_air = queue_append(station=station, track=make_playable("On Air"))
    QueueItem.objects.filter(pk=on_air.pk).update(status=QueueItem.Status.PLAYING)
    waiting = queue_append(station=station, track=make_playable("Waiting"))
    client = signed_in(editor)
    assert client.post(f"{QUEUE}{on_air.pk}/delete/", {"post": "yes"}).status_code == 403
    # Bulk delete of only queued items goes through, one audited removal each.
    response = client.post(QUEUE, {"action": "delete_selected", "_selected_action": [waiting.pk],
                                   "post": "yes"})
    assert response.status_code == 302
    assert list(QueueItem.objects.values_list("pk", flat=True)) == [on_air.pk]
    assert AuditEntry.objects.filter(action="queue.remove", object_id=str(waiting.pk)).exists()


def test_an_item_removed_by_someone_else_meanwhile_is_no_error_in_the_admin(
        editor, station, make_playable, monkeypatch):
    """The confirmation page loaded the item; another operator's request removes it before the
    admin's delete runs (the window between the admin's lookup and its delete)."""
    from django.contrib.admin import site

    from playback.services import queue_remove
    item = queue_append(station=station, track=make_playable("Shalom"))
    model_admin = site._registry[QueueItem]
    real_get_object = model_admin.get_object

    def get_then_lose(request, object_id, from_field=None):
        obj = real_get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            queue_remove(item=obj)  # the other operator wins the race
        return obj

    monkeypatch.setattr(model_admin, "get_object", get_then_lose)
    response = signed_in(editor).post(f"{QUEUE}{item.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not QueueItem.objects.exists()


def test_queue_items_are_not_added_or_edited_in_the_admin(editor, station, make_playable):
    item = queue_append(station=station, track=make_playable("Shalom"))
    client = signed_in(editor)
    assert client.get(f"{QUEUE}add/").status_code == 403
    response = client.post(f"{QUEUE}{item.pk}/change/", {"position": 1})
    assert response.status_code == 403


def test_viewer_reads_the_as_run_log_but_cannot_change_it(viewer, station, make_playable):
    row = aired(station, make_playable("Shalom", "Kol Band"), 0)
    client = signed_in(viewer)
    listing = client.get(LOG)
    assert listing.status_code == 200 and "Shalom" in listing.content.decode()
    assert client.get(f"{LOG}?outcome__exact=completed&started_at__year=2025").status_code == 200
    assert client.get(f"{LOG}{row.pk}/change/").status_code == 200  # a read-only view
    assert client.post(f"{LOG}{row.pk}/change/", {"title": "Edited"}).status_code == 403
    assert client.post(f"{LOG}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{LOG}add/").status_code == 403
    assert PlayLog.objects.get().title == "Shalom"
    # …and cannot remove queued items.
    item = queue_append(station=station, track=make_playable("Waiting"))
    assert client.post(f"{QUEUE}{item.pk}/delete/", {"post": "yes"}).status_code == 403
    assert QueueItem.objects.filter(pk=item.pk).exists()


def test_as_run_log_exports_the_selected_rows_as_csv(viewer, station, other_station, make_playable):
    song = make_playable("Shalom", "Kol Band")
    first, _skipped, third = (aired(station, song, 0), aired(station, song, 1), aired(station, song, 20))
    theirs = aired(other_station, make_playable("Theirs", station=other_station), 0)
    response = signed_in(viewer).post(LOG, {"action": "export_csv",
                                            "_selected_action": [first.pk, third.pk, theirs.pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    # Days in the station's time zone (Asia/Jerusalem, UTC+3): 09:00 May 1 to 05:00 May 2.
    assert response["Content-Disposition"] == 'attachment; filename="kol-as-run-2025-05-01-2025-05-02.csv"'
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:4] == ["started_at", "ended_at", "played_seconds", "title"]
    assert [r[0] for r in rows[1:]] == ["2025-05-01T06:00:00+00:00", "2025-05-02T02:00:00+00:00"]


def test_player_commands_are_read_only(editor, station):
    command = command_issue(station=station, action=PlayerCommand.Action.SKIP, actor=editor)
    client = signed_in(editor)
    assert "skip" in client.get("/admin/playback/playercommand/").content.decode().lower()
    response = client.post(f"/admin/playback/playercommand/{command.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert PlayerCommand.objects.filter(pk=command.pk).exists()


def test_editor_manages_the_emergency_playlist_with_their_own_tracks(editor, station, other_station,
                                                                     make_playable):
    mine = make_playable("Station ID loop")
    theirs = make_playable("Other FM loop", station=other_station)
    client = signed_in(editor)
    assert client.get(f"{EMERGENCY}add/").status_code == 200
    refused = client.post(f"{EMERGENCY}add/", {"station": station.pk, "track": theirs.pk, "position": 1})
    assert refused.status_code == 200 and not EmergencyTrack.objects.exists()
    assert "track" in refused.context["adminform"].form.errors
    response = client.post(f"{EMERGENCY}add/", {"station": station.pk, "track": mine.pk, "position": 1})
    assert response.status_code == 302
    entry = EmergencyTrack.objects.get()
    assert (entry.station, entry.track) == (station, mine)
    assert AuditEntry.objects.filter(action="emergencytrack.add", actor=editor).exists()
    # The track picker searches only the user's stations.
    found = client.get("/admin/autocomplete/", {"app_label": "playback", "model_name": "emergencytrack",
                                                "field_name": "track", "term": "loop"}).json()
    assert [r["text"] for r in found["results"]] == ["Station ID loop"]


def test_viewer_sees_the_emergency_playlist_without_changing_it(viewer, station, make_playable):
    EmergencyTrack.objects.create(station=station, track=make_playable("Loop"))
    client = signed_in(viewer)
    assert "Loop" in client.get(EMERGENCY).content.decode()
    entry = EmergencyTrack.objects.get()
    assert client.get(f"{EMERGENCY}{entry.pk}/change/").status_code == 200  # read-only
    assert client.post(f"{EMERGENCY}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert EmergencyTrack.objects.filter(pk=entry.pk).exists()
