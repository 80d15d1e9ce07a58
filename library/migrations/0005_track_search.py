"""Track search that scales: a normalised `search_text` column, a trigram index on it, list indexes.

`search_text` is filled for every existing track (library/search.py says what it holds). On
PostgreSQL the pg_trgm extension (trusted since PostgreSQL 13: a database owner may create it)
and a GIN index with `gin_trgm_ops` let `search_text LIKE '%word%'` use the index. The index is
not part of the model's state: SQLite cannot build it, and SQLite's table rebuilds recreate
every index of the model state, so the embedded default never sees it (both operations are
no-ops there). Two b-tree indexes serve the default order and `?genre=…&ordering=title`.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

from library.search import track_search_text

SEARCH_INDEX = GinIndex(fields=["search_text"], opclasses=["gin_trgm_ops"], name="track_search_trgm")


class AddIndexOnPostgres(migrations.AddIndex):
    """AddIndex for the database only, on PostgreSQL only; the model state never holds it."""

    reduces_to_sql = False

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(to_state.apps.get_model(app_label, self.model_name), self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(from_state.apps.get_model(app_label, self.model_name), self.index)

    def describe(self):
        return f"Create index {self.index.name} on {self.model_name} (PostgreSQL only)"


def fill_search_text(apps, schema_editor):
    Track = apps.get_model("library", "Track")
    batch = []
    for track in Track.objects.only("pk", "title", "artist", "album").iterator(chunk_size=2000):
        track.search_text = track_search_text(track.title, track.artist, track.album)
        batch.append(track)
        if len(batch) >= 2000:
            Track.objects.bulk_update(batch, ["search_text"])
            batch = []
    if batch:
        Track.objects.bulk_update(batch, ["search_text"])


class Migration(migrations.Migration):

    dependencies = [
        ('library', '0004_track_drive_place'),
        ('radio', '0003_google_credential_sync_run_sync_cursor'),
    ]

    operations = [
        migrations.AddField(
            model_name='track',
            name='search_text',
            field=models.TextField(blank=True, default='', editable=False),
        ),
        migrations.RunPython(fill_search_text, migrations.RunPython.noop),
        TrigramExtension(),  # a no-op on any database but PostgreSQL
        AddIndexOnPostgres(model_name='track', index=SEARCH_INDEX),
        migrations.AddIndex(
            model_name='track',
            index=models.Index(fields=['station', 'artist', 'title'], name='track_station_artist_title'),
        ),
        migrations.AddIndex(
            model_name='track',
            index=models.Index(fields=['station', 'genre', 'title'], name='track_station_genre_title'),
        ),
    ]
