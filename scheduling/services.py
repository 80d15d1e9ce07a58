"""Changes to the programme (calendars and slots), journaled, each in one transaction.

The actions are named as the admin names them (radio.admin.StationScopedAdmin), so a change
reads the same in the journal wherever it was made; the signals (scheduling/signals.py) then
tell the clients and the worker.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Model

from radio.services import audit_record, snapshot


def programme_save(*, actor, obj: Model, data: dict[str, Any]) -> Model:
    """Add or change a calendar or a programme slot of `obj.station`."""
    with transaction.atomic():
        adding = obj.pk is None
        before = None if adding else snapshot(type(obj).objects.get(pk=obj.pk))
        for field, value in data.items():
            setattr(obj, field, value)
        obj.save()
        action = f"{obj._meta.model_name}.{'add' if adding else 'change'}"
        audit_record(actor=actor, station=obj.station, action=action, obj=obj, before=before,
                     after=snapshot(obj))
    return obj


def programme_delete(*, actor, obj: Model) -> None:
    with transaction.atomic():
        audit_record(actor=actor, station=obj.station, action=f"{obj._meta.model_name}.delete", obj=obj,
                     before=snapshot(obj))
        obj.delete()
