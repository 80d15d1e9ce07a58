"""Drive tracks: the file's own name, all its parents, the fields its folders decided; paths escaped.

Stored paths used to join names with `/` as they were, so "AC/DC" read as two folders. The
path of each Drive track is rewritten with `/` and `\\` inside a name escaped by `\\`. The
file's name is recovered exactly by taking off the path of its folder (known from the
DriveFolder rows, whose names are unambiguous); when that does not match (the tree moved
since), the last segment is the best guess and the next change of the file sets it right.

Which fields the folders decided was not recorded: every folder field counts as decided,
so the first re-derive after this lets go of those no folder gives any more (falling back
to the file's tags, or blank); hand edits stay as they are.
"""

from django.db import migrations, models

FOLDER_FIELDS = ["artist", "batch", "genre", "kind", "show_name"]


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace("/", "\\/")


def forwards(apps, schema_editor):
    Track = apps.get_model("library", "Track")
    DriveFolder = apps.get_model("library", "DriveFolder")
    folders: dict[tuple[int, str], tuple[str, str, bool]] = {
        (f.station_id, f.folder_id): (f.name, f.parent_id, f.is_root)
        for f in DriveFolder.objects.all().only("station_id", "folder_id", "name", "parent_id",
                                                "is_root")}

    def names_below_root(station_id: int, folder_id: str) -> list[str] | None:
        names, seen = [], set()
        while (station_id, folder_id) in folders and folder_id not in seen:
            seen.add(folder_id)
            name, parent, is_root = folders[(station_id, folder_id)]
            if is_root:
                return list(reversed(names))
            names.append(name)
            folder_id = parent
        return None

    fields = ["source_name", "source_path", "source_parents", "folder_fields"]
    batch = []
    for track in Track.objects.filter(source="drive").only(
            "pk", "station_id", "source_path", "source_parent").iterator(chunk_size=1000):
        names = names_below_root(track.station_id, track.source_parent)
        prefix = "/".join(names) + "/" if names else ""
        if names is not None and track.source_path.startswith(prefix) and \
                len(track.source_path) > len(prefix):
            track.source_name = track.source_path[len(prefix):]
            track.source_path = "/".join(_escape(n) for n in [*names, track.source_name])
        else:  # the tree moved since: left as it was until the next change of the file
            track.source_name = track.source_path.rsplit("/", 1)[-1]
        track.source_parents = [track.source_parent] if track.source_parent else []
        track.folder_fields = FOLDER_FIELDS
        batch.append(track)
        if len(batch) >= 1000:
            Track.objects.bulk_update(batch, fields)
            batch = []
    if batch:
        Track.objects.bulk_update(batch, fields)


class Migration(migrations.Migration):

    dependencies = [
        ("library", "0003_track_download_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="track",
            name="folder_fields",
            field=models.JSONField(blank=True, default=list,
                                   help_text="Fields the Drive folders decided last time."),
        ),
        migrations.AddField(
            model_name="track",
            name="source_name",
            field=models.TextField(blank=True, verbose_name="source file name"),
        ),
        migrations.AddField(
            model_name="track",
            name="source_parents",
            field=models.JSONField(blank=True, default=list,
                                   help_text="Every Drive parent of the file (legacy files may "
                                             "have several)."),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
