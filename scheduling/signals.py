"""Every change to a slot or a calendar (admin, API, shell) tells the clients and the worker."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from radio.models import Station
from scheduling.models import CalendarSource, ProgramSlot
from scheduling.planner import schedule_update


@receiver([post_save, post_delete], sender=ProgramSlot)
@receiver([post_save, post_delete], sender=CalendarSource)
def _programme_changed(sender, instance, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    station = Station.objects.filter(pk=instance.station_id).first()
    if station is not None:  # not when the station itself is being deleted
        schedule_update(station, reason=sender.__name__.lower())
