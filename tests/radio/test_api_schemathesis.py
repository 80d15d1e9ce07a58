"""The API answers what /api/schema says, for an admin and a viewer: schemathesis fuzzes every operation.

Requests go through the real Django stack (the WSGI handler, every middleware, DRF) on the
test's PostgreSQL, inside the test's transaction. No playback worker runs: transport
commands stay pending and queue changes only nudge a worker that is not there.

Every operation of the schema is run, destructive ones included (DELETE, skip, stop, clear,
revoking the test's own token, demoting the signed-in admin): each example is rolled back.
No operation is excluded; the two checks left out are named, with why, at EXCLUDED_CHECKS.

A failure names the operation and prints schemathesis' reproduction (a curl command).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from werkzeug.test import Client

from library.models import Genre, Track
from library.services import track_import_file
from playback.models import PlayerState, PlayLog, Reason
from playback.services import command_issue, playback_lease_key, queue_append
from radio.models import Notification, Role, SyncRun
from radio.services import lease_acquire, notification_post
from tests.library.audio import make_tone

pytestmark = pytest.mark.django_db

# Examples per operation and generation mode: about 45 operations × 2 modes × 2 roles stay
# within the two minutes this test may take.
EXAMPLES = 15
PASSWORD = "pw-Secret-123"
# Every check schemathesis has runs (no 5xx, status codes, content types, headers and bodies as
# documented, auth enforced, 405 for undocumented methods, …) except two, which judge whether
# the API accepts a request rather than whether its answer is true:
# - positive_data_acceptance wants every schema-valid request accepted: a schema cannot say
#   which password is right, which track can go on air or which genre name is taken, and
#   those are 400s with field errors by design;
# - negative_data_rejection wants every schema-violating request refused: DRF reads `"5"` as
#   the number 5, `5` as the text "5" and `0`/`1` as booleans on purpose (so forms and
#   lenient clients work), so a body the schema calls the wrong type can be accepted.
# Negative examples still run: bad input must never be a 5xx or an undocumented answer.
EXCLUDED_CHECKS = [positive_data_acceptance, negative_data_rejection]


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler, on the test's database connection.

    The handler closes the database connection at each request's start and end (which
    would end the test's transaction); Django's own test client disconnects the same
    signals for the same reason.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def on_air_data(station, make_user, tmp_path):
    """A station with some of everything: tracks (one playable), a genre, queue, history, commands."""
    editor = make_user(Role.EDITOR, station, username="editor")
    genre = Genre.objects.create(station=station, name="Pop")
    song = track_import_file(station=station, path=make_tone(tmp_path / "song.mp3", seconds=1.0),
                             source=Track.Source.UPLOAD, original_name="Song.mp3",
                             hints={"title": "Shir", "artist": "Kol Band"})
    Track.objects.filter(pk=song.pk).update(analysis=Track.Analysis.OK, genre=genre)
    song.refresh_from_db()
    Track.objects.create(station=station, title="Local", source=Track.Source.FOLDER,
                         source_id="/srv/music/Local.mp3", source_path="Local.mp3")
    for _ in range(3):
        queue_append(station=station, track=song, actor=editor)
    start = timezone.now() - timedelta(hours=2)
    for n in range(5):
        PlayLog.objects.create(station=station, track=song, title="Shir", artist="Kol Band", kind="song",
                               started_at=start + timedelta(minutes=4 * n),
                               ended_at=start + timedelta(minutes=4 * n + 3), played_seconds=180.0,
                               outcome=PlayLog.Outcome.COMPLETED, reason=Reason.AUTODJ, requested_by=editor)
    command_issue(station=station, action="skip", actor=editor)
    notification_post(station=station, actor=editor, message="Studio 2 mic is live",
                      level=Notification.Level.WARNING)
    # The empty and null cases too, so the schema's nullability is put to the test:
    # what the system did by itself (no user), an item still on air, a sync still running.
    PlayLog.objects.create(station=station, track=song, title="Shir", kind="song", started_at=timezone.now(),
                           played_seconds=0.0, outcome=PlayLog.Outcome.FAILED, failure_reason="unreadable",
                           reason=Reason.EMERGENCY)
    command_issue(station=station, action="volume", args={"volume": 40})
    notification_post(station=station, message="Dead air for 5 s", level=Notification.Level.ERROR,
                      source="watchdog")
    SyncRun.objects.create(station=station, kind=SyncRun.Kind.DRIVE_FULL)
    SyncRun.objects.create(station=station, kind=SyncRun.Kind.GMAIL, status=SyncRun.Status.FAILED,
                           finished_at=timezone.now(), error="invalid_grant", triggered_by=editor)
    return station


def token_for(app, user) -> str:
    """Sign in as a program does (Django's test client would reconnect the signals above)."""
    response = Client(app).post("/api/v1/auth/token", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.get_data()
    return response.json["token"]


def examples(operation, mode: GenerationMode, *, station, auth: dict[str, str]) -> None:
    """EXAMPLES generated cases of one operation, each sent and checked against the schema.

    Each example runs in a savepoint rolled back afterwards: every request meets the same
    station (a DELETE, a revoked token or a demoted admin does not leak into the next), and
    a database error in one cannot hide the next behind "transaction aborted".
    """
    fixed = {"station_slug": station.slug} if any(p.name == "station_slug"
                                                   for p in operation.path_parameters) else {}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=["explicit", "generate"])
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def run(case) -> None:
        savepoint = transaction.savepoint()
        try:
            case.call_and_validate(headers=auth, app=operation.schema.app, excluded_checks=EXCLUDED_CHECKS)
        finally:
            transaction.savepoint_rollback(savepoint)
            transaction.set_rollback(False)  # what failed was undone with the savepoint

    run()


def fuzz(schema, *, station, user) -> list[str]:
    """Run every operation; return the failures (operation and schemathesis' report)."""
    auth = {"Authorization": f"Token {token_for(schema.app, user)}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the whole API, not an empty or unauthorised schema
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                examples(operation, mode, station=station, auth=auth)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing of this operation can be made invalid
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, all reported below
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    return failures


def load_schema(app, user):
    return schemathesis.openapi.from_wsgi("/api/schema", app,
                                          headers={"Authorization": f"Token {token_for(app, user)}",
                                                   "Accept": "application/vnd.oai.openapi+json"})


def test_now_playing_on_air_answers_as_the_schema_says(on_air_data, make_user, wsgi_app):
    """The fuzzing above runs with no worker (nothing on air): the on-air shape is checked here."""
    station = on_air_data
    song = Track.objects.get(station=station, title="Shir")
    PlayerState.objects.create(station=station, is_playing=True, current_track=song,
                               current_reason=Reason.AUTODJ, started_at=timezone.now() - timedelta(seconds=30),
                               position=30.0, duration=180.0)
    viewer = make_user(Role.VIEWER, station, username="listener")
    schema = load_schema(wsgi_app, viewer)
    auth = {"Authorization": f"Token {token_for(wsgi_app, viewer)}"}
    # The worker's heartbeat after the schema is loaded (a second or more on a busy machine):
    # the test settings call a worker silent for 2 s gone.
    lease_acquire(key=playback_lease_key(station), owner="test:1:abc", stale_after=60, station=station)
    for path in ("/api/v1/stations/{station_slug}/now-playing", "/api/v1/stations/{station_slug}/queue"):
        case = schema[path]["GET"].Case(path_parameters={"station_slug": station.slug})
        response = case.call_and_validate(headers=auth, app=wsgi_app, excluded_checks=EXCLUDED_CHECKS)
        assert response.status_code == 200
    assert response.json()[0]["status"] == "queued"
    case = schema["/api/v1/stations/{station_slug}/now-playing"]["GET"].Case(
        path_parameters={"station_slug": station.slug})
    data = case.call(headers=auth, app=wsgi_app).json()
    assert data["now_playing"]["track"]["title"] == "Shir" and data["playing_next"]["track"]["title"] == "Shir"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER])
def test_every_operation_answers_as_the_schema_says(on_air_data, make_user, wsgi_app, role):
    user = make_user(role, on_air_data, username=f"fuzz-{role}")
    schema = load_schema(wsgi_app, user)
    failures = fuzz(schema, station=on_air_data, user=user)
    assert not failures, "\n\n".join(failures)
