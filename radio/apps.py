from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class RadioConfig(AppConfig):
    name = "radio"
    verbose_name = _("Stations and access")

    def ready(self) -> None:
        post_migrate.connect(_ensure_default_station, sender=self)
        from radio import signals

        signals.connect()


def _ensure_default_station(sender, **kwargs) -> None:
    from radio.services import station_ensure_default

    station_ensure_default()
