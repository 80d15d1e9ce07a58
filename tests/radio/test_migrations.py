"""Migrations that move data keep it: run them backwards and forwards on the test database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_MOVE = [("radio", "0002_station_no_repeat_hours_station_public_now_playing_and_more"),
               ("library", "0001_initial")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_google_credential_sync_run_and_cursor_keep_their_rows_when_they_move_to_radio():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = migrate(BEFORE_MOVE)
    try:
        assert "library_syncrun" in connection.introspection.table_names()
        station = old.get_model("radio", "Station").objects.create(name="Kol", slug="kol-mig")
        credential = old.get_model("library", "GoogleCredential").objects.create(
            station=station, email="studio@kol.fm", scopes=["drive"], refresh_token_encrypted="gAAA…")
        run = old.get_model("library", "SyncRun").objects.create(
            station=station, kind="drive_full", status="failed", error="HTTP 403", counts={"added": 2})
        old.get_model("library", "SyncCursor").objects.create(station=station, source="drive",
                                                              token="12345")
    finally:
        new = migrate(leaves)

    tables = connection.introspection.table_names()
    assert {"radio_syncrun", "radio_synccursor", "radio_googlecredential"} <= set(tables)
    assert not {"library_syncrun", "library_synccursor", "library_googlecredential"} & set(tables)
    moved = new.get_model("radio", "SyncRun").objects.get(pk=run.pk)
    assert (moved.kind, moved.error, moved.counts) == ("drive_full", "HTTP 403", {"added": 2})
    assert new.get_model("radio", "GoogleCredential").objects.get(pk=credential.pk).email == \
        "studio@kol.fm"
    assert new.get_model("radio", "SyncCursor").objects.get(station_id=station.pk).token == "12345"
    # The models the code uses read them, and new rows get fresh ids (the sequence came along).
    from radio.models import Station, SyncRun

    calendar = SyncRun.objects.create(station=Station.objects.get(pk=station.pk),
                                      kind=SyncRun.Kind.CALENDAR)
    assert calendar.pk > run.pk and SyncRun.objects.filter(station_id=station.pk).count() == 2
