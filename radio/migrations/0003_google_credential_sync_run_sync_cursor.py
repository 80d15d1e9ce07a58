"""GoogleCredential, SyncRun and SyncCursor move from `library` to `radio`, rows kept.

The models join radio's state on their existing tables, then AlterModelTable
renames the tables (library_* → radio_*) in place; library 0002 then drops
them from the old app's state without touching the database. Reversible.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('radio', '0002_station_no_repeat_hours_station_public_now_playing_and_more'),
        ('library', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='GoogleCredential',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('email', models.EmailField(blank=True, max_length=254, verbose_name='Google account')),
                        ('scopes', models.JSONField(default=list)),
                        ('refresh_token_encrypted', models.TextField()),
                        ('connected_at', models.DateTimeField(auto_now=True)),
                        ('connected_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('station', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='google_credential', to='radio.station')),
                    ],
                    options={
                        'verbose_name': 'Google connection',
                        'verbose_name_plural': 'Google connections',
                        'db_table': 'library_googlecredential',
                    },
                ),
                migrations.CreateModel(
                    name='SyncCursor',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('source', models.CharField(max_length=16)),
                        ('token', models.CharField(max_length=500)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('station', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='radio.station')),
                    ],
                    options={
                        'db_table': 'library_synccursor',
                        'constraints': [models.UniqueConstraint(fields=('station', 'source'), name='synccursor_unique')],
                    },
                ),
                migrations.CreateModel(
                    name='SyncRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('drive_full', 'Drive: full crawl'), ('drive_changes', 'Drive: changes'), ('drive_download', 'Drive: downloads'), ('gmail', 'Gmail import')], max_length=16, verbose_name='kind')),
                        ('status', models.CharField(choices=[('running', 'Running'), ('ok', 'Finished'), ('failed', 'Failed')], default='running', max_length=16, verbose_name='status')),
                        ('started_at', models.DateTimeField(auto_now_add=True, verbose_name='started')),
                        ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished')),
                        ('counts', models.JSONField(blank=True, default=dict, verbose_name='counts')),
                        ('progress', models.JSONField(blank=True, default=dict, verbose_name='progress')),
                        ('requests', models.PositiveIntegerField(default=0, verbose_name='Google requests')),
                        ('error', models.TextField(blank=True, verbose_name='error')),
                        ('station', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sync_runs', to='radio.station')),
                        ('triggered_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'sync run',
                        'verbose_name_plural': 'sync runs',
                        'ordering': ['-started_at', '-id'],
                        'db_table': 'library_syncrun',
                    },
                ),
            ],
        ),
        # table=None: the default name (radio_<model>); renames the table in place.
        migrations.AlterModelTable(name='googlecredential', table=None),
        migrations.AlterModelTable(name='synccursor', table=None),
        migrations.AlterModelTable(name='syncrun', table=None),
        migrations.AlterField(
            model_name='syncrun',
            name='kind',
            field=models.CharField(choices=[('drive_full', 'Drive: full crawl'), ('drive_changes', 'Drive: changes'), ('drive_download', 'Drive: downloads'), ('gmail', 'Gmail import'), ('calendar', 'Calendar sync')], max_length=16, verbose_name='kind'),
        ),
    ]
