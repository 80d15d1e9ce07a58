"""GoogleCredential, SyncRun and SyncCursor now live in `radio` (see radio 0003).

State only: radio 0003 already took over (and renamed) the tables.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('library', '0001_initial'),
        ('radio', '0003_google_credential_sync_run_sync_cursor'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='GoogleCredential'),
                migrations.DeleteModel(name='SyncCursor'),
                migrations.DeleteModel(name='SyncRun'),
            ],
        ),
    ]
