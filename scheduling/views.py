"""The schedule's REST API: calendars (and "sync now"), their mirrored events, programme slots, and
the planned schedule with its conflicts.

Members read; editors change calendars and slots (as they do Drive folders in the admin). Every
write is journaled; the signals in scheduling/signals.py then tell the clients and the worker.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.db import IntegrityError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from library.filters import IdFilter
from library.pagination import CappedCountPagination
from library.serializers import DetailSerializer
from radio.models import Station
from radio.views import StationScopedMixin
from scheduling.models import CalendarEvent, CalendarSource, ProgramSlot
from scheduling.planner import plan, plan_data
from scheduling.serializers import (
    CalendarEventSerializer,
    CalendarSourceSerializer,
    InstantError,
    ProgramSlotSerializer,
    ScheduleConflictsSerializer,
    ScheduleSerializer,
    ScheduleWindowSerializer,
    parse_instant,
)
from scheduling.services import programme_delete, programme_save

logger = logging.getLogger(__name__)


class ProgrammeWriteMixin:
    """Creates, changes and deletes through the services (scheduling/services.py)."""

    def perform_create(self, serializer):
        serializer.instance = programme_save(actor=self.request.user, obj=self.get_queryset().model(
            station=self.station), data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = programme_save(actor=self.request.user, obj=serializer.instance,
                                             data=serializer.validated_data)

    def perform_destroy(self, instance):
        programme_delete(actor=self.request.user, obj=instance)


# --- Calendars ----------------------------------------------------------------

CALENDAR_TAKEN = {"calendar_id": [_lazy("This station already plays from this calendar.")]}


class CalendarSourceViewSet(StationScopedMixin, ProgrammeWriteMixin, viewsets.ModelViewSet):
    """The Google Calendars the station plays from. Members read; editors add, change, remove and sync."""

    serializer_class = CalendarSourceSerializer
    queryset = CalendarSource.objects.none()
    lookup_value_regex = r"\d+"
    filterset_fields = ["enabled"]
    ordering_fields = ["name", "last_sync_at"]

    def get_queryset(self):
        return CalendarSource.objects.filter(station=self.station).select_related("station")

    def perform_create(self, serializer):
        try:
            super().perform_create(serializer)
        except IntegrityError as exc:  # a concurrent create took the calendar
            raise ValidationError(CALENDAR_TAKEN) from exc

    def perform_update(self, serializer):
        try:
            super().perform_update(serializer)
        except IntegrityError as exc:
            raise ValidationError(CALENDAR_TAKEN) from exc

    @extend_schema(request=None,
                   responses={202: DetailSerializer, 409: DetailSerializer, 503: DetailSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request, *args, **kwargs):
        """Sync now: the station's enabled calendars are read from Google by a background task (202).
        The run shows in `sync-runs`; the calendar's `last_sync_at` and `last_error` say how it went."""
        from scheduling.tasks import calendar_sync_request

        calendar = self.get_object()
        if not calendar.enabled:
            return Response({"detail": _("This calendar is disabled: enable it, then sync.")},
                            status=status.HTTP_409_CONFLICT)
        try:
            calendar_sync_request(station=self.station, actor=request.user)
        except BrokerError:
            logger.exception("station=%s calendar=%s sync not queued: broker unavailable", self.station.slug,
                             calendar.pk)
            return Response({"detail": _("The task queue is unavailable; try again shortly.")},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"detail": _("Sync queued.")}, status=status.HTTP_202_ACCEPTED)


# --- Calendar events ----------------------------------------------------------

class InstantFormField(forms.Field):
    """`parse_instant` for django-filter: the same rule as the schedule's window."""

    def to_python(self, value) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return parse_instant(str(value))
        except InstantError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = InstantFormField


class CalendarEventFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=CalendarEvent.Status.choices)
    start = InstantFilter(field_name="ends_at", lookup_expr="gt", label=_lazy(
        "events ending after (ISO 8601 date-time with offset, e.g. 2026-03-27T00:00:00+03:00)"))
    end = InstantFilter(field_name="starts_at", lookup_expr="lt", label=_lazy(
        "events starting before (ISO 8601 date-time with offset)"))
    all_day = django_filters.BooleanFilter()
    calendar = IdFilter(field_name="calendar_id", label=_lazy("calendar id"))

    class Meta:
        model = CalendarEvent
        fields = ["status", "start", "end", "all_day", "calendar"]


class CalendarEventViewSet(StationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Events of the station's calendars as last synced, each with what the station makes of it.

    Ordered by start; `start` and `end` keep the events overlapping that window.
    """

    serializer_class = CalendarEventSerializer
    queryset = CalendarEvent.objects.none()
    lookup_value_regex = r"\d+"
    filter_backends = [DjangoFilterBackend]
    filterset_class = CalendarEventFilter
    pagination_class = CappedCountPagination

    def get_queryset(self):
        return CalendarEvent.objects.filter(station=self.station).order_by("starts_at", "id")


# --- Programme slots ----------------------------------------------------------

class ProgramSlotViewSet(StationScopedMixin, ProgrammeWriteMixin, viewsets.ModelViewSet):
    """The station's weekly programme: days, times in the station's zone, what plays. Members read;
    editors add, change and remove slots."""

    serializer_class = ProgramSlotSerializer
    queryset = ProgramSlot.objects.none()
    lookup_value_regex = r"\d+"
    filterset_fields = ["enabled", "content_kind"]
    ordering_fields = ["start_time", "name", "priority", "updated_at"]

    def get_queryset(self):
        return ProgramSlot.objects.filter(station=self.station).select_related("station").order_by(
            "start_time", "name", "id")


# --- The planned schedule -----------------------------------------------------

def schedule_window(request) -> tuple[datetime, datetime]:
    # An empty parameter means "not given", as everywhere in the API (radio/schema.py).
    query = ScheduleWindowSerializer(data={k: v for k, v in request.query_params.items() if v != ""})
    query.is_valid(raise_exception=True)
    return query.validated_data["start"], query.validated_data["end"]


def window_data(station: Station, start: datetime, end: datetime) -> dict[str, Any]:
    return {"start": start.isoformat(), "end": end.isoformat(), "time_zone": station.time_zone}


class ScheduleView(StationScopedMixin, APIView):
    """What the programme asks for over a window: calendar events and slot occurrences merged by the
    priority rule (times in UTC), the conflicts it settled, events that cannot play, and all-day notes."""

    @extend_schema(parameters=[ScheduleWindowSerializer], responses=ScheduleSerializer)
    def get(self, request, *args, **kwargs):
        start, end = schedule_window(request)
        return Response({**window_data(self.station, start, end), **plan_data(plan(self.station, start, end))})


class ScheduleConflictsView(StationScopedMixin, APIView):
    """Only the conflicts of the window: which entry kept its time, what the other lost, and why."""

    @extend_schema(parameters=[ScheduleWindowSerializer], responses=ScheduleConflictsSerializer)
    def get(self, request, *args, **kwargs):
        start, end = schedule_window(request)
        return Response({**window_data(self.station, start, end),
                         "conflicts": plan(self.station, start, end).conflicts})
