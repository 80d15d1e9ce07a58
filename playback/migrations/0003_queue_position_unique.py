"""Queue positions become unique per station and dense (0..n-1, the item on air first).

Concurrent appends used to write the same position twice; before the constraint goes on,
every station's queue is renumbered in play order (on air first, then position, then id),
so existing duplicates are repaired rather than refused.
"""

from django.db import migrations, models


def renumber_queues(apps, schema_editor):
    QueueItem = apps.get_model("playback", "QueueItem")
    stations = QueueItem.objects.values_list("station_id", flat=True).distinct()
    for station_id in list(stations):
        rows = sorted(QueueItem.objects.filter(station_id=station_id).values_list("pk", "position", "status"),
                      key=lambda row: (row[2] != "playing", row[1], row[0]))
        for index, (pk, position, _status) in enumerate(rows):
            if position != index:
                QueueItem.objects.filter(pk=pk).update(position=index)


class Migration(migrations.Migration):

    dependencies = [
        ("playback", "0002_playercommand_expired"),
    ]

    operations = [
        migrations.RunPython(renumber_queues, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="queueitem",
            constraint=models.UniqueConstraint(fields=("station", "position"), name="queue_position_unique"),
        ),
    ]
