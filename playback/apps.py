from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlaybackConfig(AppConfig):
    name = "playback"
    verbose_name = _("Playback")
