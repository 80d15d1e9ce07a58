"""Per-track download state: a file Drive will not serve fails on its own, with backoff."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('library', '0002_move_google_models_to_radio'),
    ]

    operations = [
        migrations.AddField(
            model_name='track',
            name='download_error',
            field=models.TextField(blank=True, verbose_name='download error'),
        ),
        migrations.AddField(
            model_name='track',
            name='download_failures',
            field=models.PositiveIntegerField(default=0, verbose_name='failed downloads in a row'),
        ),
        migrations.AddField(
            model_name='track',
            name='download_retry_at',
            field=models.DateTimeField(blank=True, db_index=True, null=True,
                                       verbose_name='next download attempt'),
        ),
        migrations.AddField(
            model_name='track',
            name='download_error_checksum',
            field=models.CharField(blank=True, max_length=32),
        ),
    ]
