"""Curating the library in the admin: scoped to the user's stations, hand edits pinned and journaled."""

from __future__ import annotations

import pytest
from django.test import Client

from library.models import DriveFolder, Genre, Track
from radio.models import AuditEntry, Membership, Role, Station, SyncRun

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/library/track/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_track(station, title: str, **fields) -> Track:
    fields.setdefault("source", Track.Source.UPLOAD)
    return Track.objects.create(station=station, title=title, **fields)


def change_form(track: Track, **changes) -> dict:
    """The POST a browser sends from the track's change form."""
    data = {"kind": track.kind, "title": track.title, "artist": track.artist, "album": track.album,
            "genre": track.genre_id or "", "year": track.year or "", "language": track.language,
            "show_name": track.show_name, "batch": track.batch, "cue_in": track.cue_in,
            "cue_out": "" if track.cue_out is None else track.cue_out, "_save": "Save"}
    if track.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def editor(station, make_user):
    return make_user(Role.EDITOR, station, is_staff=True)


def test_editor_sees_only_their_stations_tracks(editor, station, other_station):
    mine = make_track(station, "Kol Jingle")
    theirs = make_track(other_station, "Other FM Jingle")
    client = signed_in(editor)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "Kol Jingle" in page.content.decode() and "Other FM Jingle" not in page.content.decode()
    assert client.get(f"{CHANGELIST}{mine.pk}/change/").status_code == 200
    assert client.get(f"{CHANGELIST}{theirs.pk}/change/").status_code in (302, 403, 404)
    assert client.post(f"{CHANGELIST}{theirs.pk}/change/",
                       change_form(theirs, title="Hijacked")).status_code in (302, 403, 404)
    theirs.refresh_from_db()
    assert theirs.title == "Other FM Jingle"


def test_change_form_has_audio_preview_and_cover(editor, station):
    track = make_track(station, "With art", file="library/kol/ab/abc.mp3", cover="library/kol/cd/cd.png",
                       duration=125.4)
    page = signed_in(editor).get(f"{CHANGELIST}{track.pk}/change/").content.decode()
    assert f'<audio controls preload="none" src="/api/v1/stations/kol/tracks/{track.pk}/audio">' in page
    assert f'src="/api/v1/stations/kol/tracks/{track.pk}/cover"' in page
    listing = signed_in(editor).get(CHANGELIST).content.decode()
    assert "2:05" in listing  # duration as mm:ss


def test_hand_edit_in_the_admin_is_pinned_and_journaled(editor, station):
    track = make_track(station, "Shalom", artist="Someone", edited_fields=["kind"])
    response = signed_in(editor).post(f"{CHANGELIST}{track.pk}/change/",
                                      change_form(track, title="Shalom Aleichem", cue_in="1.5"))
    assert response.status_code == 302, response.content.decode()[:2000]
    track.refresh_from_db()
    assert (track.title, track.cue_in) == ("Shalom Aleichem", 1.5)
    assert track.edited_fields == ["cue_in", "kind", "title"]
    entry = AuditEntry.objects.get(action="track.update")
    assert entry.actor == editor and entry.before["title"] == "Shalom"


def test_admin_refuses_cue_out_before_cue_in_and_foreign_genre(editor, station, other_station):
    track = make_track(station, "Shalom")
    foreign = Genre.objects.create(station=other_station, name="Rock")
    client = signed_in(editor)
    page = client.post(f"{CHANGELIST}{track.pk}/change/", change_form(track, cue_in="5", cue_out="3"))
    assert page.status_code == 200 and "Cue out must come after cue in." in page.content.decode()
    page = client.post(f"{CHANGELIST}{track.pk}/change/", change_form(track, genre=foreign.pk))
    assert page.status_code == 200 and "errorlist" in page.content.decode()
    track.refresh_from_db()
    assert (track.cue_out, track.genre, track.edited_fields) == (None, None, [])


def test_bulk_disable_and_enable(editor, station):
    a, b = make_track(station, "A"), make_track(station, "B")
    keep = make_track(station, "C")
    client = signed_in(editor)
    response = client.post(CHANGELIST, {"action": "disable", "_selected_action": [a.pk, b.pk]})
    assert response.status_code == 302
    states = dict(Track.objects.values_list("title", "enabled"))
    assert states == {"A": False, "B": False, "C": True}
    a.refresh_from_db()
    assert a.edited_fields == ["enabled"]
    assert AuditEntry.objects.filter(action="track.update").count() == 2
    client.post(CHANGELIST, {"action": "enable", "_selected_action": [a.pk]})
    a.refresh_from_db()
    keep.refresh_from_db()
    assert a.enabled and keep.edited_fields == []


def test_set_genre_through_the_intermediate_page(editor, station, other_station):
    jazz = Genre.objects.create(station=station, name="Jazz")
    Genre.objects.create(station=other_station, name="Foreign Genre")
    a, b = make_track(station, "A"), make_track(station, "B")
    client = signed_in(editor)
    page = client.post(CHANGELIST, {"action": "set_genre", "_selected_action": [a.pk, b.pk]})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Jazz" in html and "Foreign Genre" not in html
    response = client.post(CHANGELIST, {"action": "set_genre", "_selected_action": [a.pk, b.pk],
                                        "select_across": "0", "apply": "1", "value": jazz.pk})
    assert response.status_code == 302
    assert set(Track.objects.values_list("genre__name", flat=True)) == {"Jazz"}
    a.refresh_from_db()
    assert a.edited_fields == ["genre"]


def test_set_kind_through_the_intermediate_page(editor, station):
    a = make_track(station, "Station ID")
    client = signed_in(editor)
    assert client.post(CHANGELIST, {"action": "set_kind", "_selected_action": [a.pk]}).status_code == 200
    client.post(CHANGELIST, {"action": "set_kind", "_selected_action": [a.pk], "apply": "1",
                             "value": "jingle"})
    a.refresh_from_db()
    assert (a.kind, a.edited_fields) == ("jingle", ["kind"])


def test_reanalyse_action_queues_analysis(editor, station):
    track = make_track(station, "A")
    response = signed_in(editor).post(CHANGELIST, {"action": "reanalyse", "_selected_action": [track.pk]},
                                      follow=True)
    assert "1 track queued for analysis." in response.content.decode()


def curator_elsewhere(station, make_user):
    """A viewer of `station` who edits another one (only editors and admins enter the admin)."""
    user = make_user(Role.VIEWER, station)
    elsewhere = Station.objects.create(name="Elsewhere FM", slug="elsewhere")
    Membership.objects.create(user=user, station=elsewhere, role=Role.EDITOR)
    return user


def test_viewer_staff_can_view_but_not_change(station, make_user):
    viewer = curator_elsewhere(station, make_user)
    track = make_track(station, "Shalom")
    client = signed_in(viewer)
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200 and "Shalom" in listing.content.decode()
    page = client.get(f"{CHANGELIST}{track.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"{CHANGELIST}{track.pk}/change/",
                       change_form(track, title="Changed")).status_code == 403
    client.post(CHANGELIST, {"action": "disable", "_selected_action": [track.pk]})
    track.refresh_from_db()
    assert (track.title, track.enabled) == ("Shalom", True)


def test_duplicate_filter_lists_twins_together(editor, station):
    make_track(station, "Hallelujah", artist="Milk & Honey", checksum="a" * 32)
    make_track(station, "Zemer", artist="Other", checksum="a" * 32)
    make_track(station, "hallelujah!", artist="MILK & HONEY", checksum="b" * 32)
    make_track(station, "Alone", artist="Solo", checksum="c" * 32)
    client = signed_in(editor)
    same = client.get(CHANGELIST + "?duplicates=same_file").content.decode()
    assert "Zemer" in same and "Alone" not in same and "hallelujah!" not in same
    likely = client.get(CHANGELIST + "?duplicates=likely").content.decode()
    assert "hallelujah!" in likely and "Alone" not in likely and "Zemer" not in likely


def test_sync_now_button_queues_a_sync_for_editors(editor, station, make_user,
                                                   django_capture_on_commit_callbacks):
    SyncRun.objects.create(station=station, kind=SyncRun.Kind.DRIVE_FULL, status=SyncRun.Status.FAILED,
                           error="Drive said 403")
    client = signed_in(editor)
    listing = client.get("/admin/radio/syncrun/").content.decode()
    assert "Sync now" in listing and "Drive said 403" in listing
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/admin/radio/syncrun/sync-now/", {"station": station.slug}, follow=True)
    assert "Sync queued" in response.content.decode()
    assert len(callbacks) == 1

    viewer = signed_in(curator_elsewhere(station, make_user))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert viewer.post("/admin/radio/syncrun/sync-now/", {"station": station.slug}).status_code == 403
    assert callbacks == []


def test_genre_and_drive_folder_admin(editor, station, other_station):
    client = signed_in(editor)
    response = client.post("/admin/library/genre/add/", {"station": station.pk, "name": "Rock"})
    assert response.status_code == 302
    again = client.post("/admin/library/genre/add/", {"station": station.pk, "name": "Rock"})
    assert again.status_code == 200 and Genre.objects.filter(station=station).count() == 1
    foreign = Genre.objects.create(station=other_station, name="Pop")
    folder = DriveFolder.objects.create(station=station, folder_id="f-1", name="Jingles")
    form = {"name": "Jingles", "is_root": "on", "kind_override": "jingle", "genre_override": foreign.pk,
            "artist_override": "", "show_override": "", "batch_override": ""}
    page = client.post(f"/admin/library/drivefolder/{folder.pk}/change/", form)
    assert page.status_code == 200
    form["genre_override"] = Genre.objects.get(station=station).pk
    assert client.post(f"/admin/library/drivefolder/{folder.pk}/change/", form).status_code == 302
    folder.refresh_from_db()
    assert (folder.is_root, folder.kind_override, folder.genre_override.name) == (True, "jingle", "Rock")
    assert AuditEntry.objects.filter(action="drivefolder.change", station=station).exists()


def test_library_admin_pages_render_for_a_superuser(station, other_station, make_user):
    root = make_user(is_staff=True, is_superuser=True)
    genre = Genre.objects.create(station=station, name="Rock")
    track = make_track(station, "Shalom", genre=genre, duration=3725.0)
    folder = DriveFolder.objects.create(station=station, folder_id="f-1", name="Music", is_root=True)
    run = SyncRun.objects.create(station=other_station, kind=SyncRun.Kind.DRIVE_FULL, counts={"new": 2})
    client = signed_in(root)
    for url in (CHANGELIST, f"{CHANGELIST}{track.pk}/change/", "/admin/library/genre/",
                f"/admin/library/genre/{genre.pk}/change/", "/admin/library/genre/add/",
                "/admin/library/drivefolder/", f"/admin/library/drivefolder/{folder.pk}/change/",
                "/admin/library/drivefolder/add/", "/admin/radio/syncrun/",
                f"/admin/radio/syncrun/{run.pk}/change/", f"{CHANGELIST}?missing=yes&duplicates=likely"):
        assert client.get(url).status_code == 200, url
    listing = client.get(CHANGELIST).content.decode()
    assert "1:02:05" in listing  # hours when a show is that long
    syncs = client.get("/admin/radio/syncrun/").content.decode()
    assert 'id="sync-now-station"' in syncs and "new: 2" in syncs  # two stations: choose one
    assert client.get("/admin/radio/syncrun/sync-now/").status_code == 405


# --- upload from the admin ---------------------------------------------------------------

def test_editor_uploads_audio_in_the_admin(station, make_user, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from library import storage
    from tests.library.audio import make_tone

    editor = make_user(Role.EDITOR, station, is_staff=True)
    client = Client()
    client.force_login(editor)
    assert b"upload-audio" in client.get("/admin/library/track/").content
    path = make_tone(tmp_path / "jingle.mp3", seconds=1.0, title="Morning ID")
    response = client.post("/admin/library/track/upload/", {
        "station": station.pk, "kind": "jingle",
        "file": SimpleUploadedFile("jingle.mp3", path.read_bytes(), content_type="audio/mpeg")})
    assert response.status_code == 302
    track = Track.objects.get()
    assert (track.kind, track.title, track.source) == ("jingle", "Morning ID", "upload")
    assert storage.exists(track.file)
    assert AuditEntry.objects.filter(action="track.import", actor=editor).exists()


def test_admin_upload_rejects_what_is_not_audio(station, make_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = Client()
    client.force_login(make_user(Role.EDITOR, station, is_staff=True))
    response = client.post("/admin/library/track/upload/", {
        "station": station.pk, "kind": "song",
        "file": SimpleUploadedFile("song.mp3", b"this is text, not audio")})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_file_error"' in page and "song.mp3: unreadable audio" in page
    assert not Track.objects.exists()


def test_viewer_cannot_upload_in_the_admin(station, make_user):
    client = Client()
    client.force_login(make_user(Role.VIEWER, station, is_staff=True))
    response = client.get("/admin/library/track/upload/")  # a viewer's staff flag opens no admin
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
