"""Station-scoped access for the API: viewer reads, editor writes, admin manages."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied, ValidationError

from radio.models import Role, Station
from radio.services import request_role, role_at_least


def valid_station_slug(value: str) -> str:
    """The slug from the URL, checked by the model field's own validators before any query.

    A value no station could have (a NUL byte, which PostgreSQL refuses to compare) is
    the client's mistake: 400 naming `station_slug`, not a database error.
    """
    try:
        Station._meta.get_field("slug").run_validators(value)
    except DjangoValidationError as exc:
        raise ValidationError({"station_slug": exc.messages}) from exc
    return value


def station_from_view(view) -> Station:
    station = getattr(view, "_station", None)
    if station is None:
        slug = valid_station_slug(view.kwargs["station_slug"])
        station = get_object_or_404(Station, slug=slug)
        view._station = station
    return station


class StationRole(permissions.BasePermission):
    """Members read; writes need `write_role` (editor unless the view says admin).

    A user who is not a member of the station is refused everything on it.
    """

    message = "You are not a member of this station."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        station = station_from_view(view)
        role = request_role(request, station)  # one membership query per request
        if role is None:
            raise PermissionDenied(self.message)
        if request.method in permissions.SAFE_METHODS:
            return role_at_least(role, getattr(view, "read_role", Role.VIEWER))
        needed = getattr(view, "write_role", Role.EDITOR)
        if not role_at_least(role, needed):
            raise PermissionDenied(f"This needs the {Role(needed).label.lower()} role on this station.")
        return True
