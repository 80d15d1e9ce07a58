from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlaybackConfig(AppConfig):
    name = "playback"
    verbose_name = _("Playback")

    def ready(self) -> None:
        from scheduling.planner import schedule_changed

        schedule_changed.connect(_wake_worker, dispatch_uid="playback-schedule-changed")


def _wake_worker(sender, station, **kwargs) -> None:
    """The programme changed: the worker reads it again now (it also reads it every few seconds)."""
    from playback.services import worker_nudge

    worker_nudge(station)
