"""Schedule admin: calendars (with "Sync now"), the events they mirror (read only), programme slots.

All are `StationScopedAdmin`s: staff see their stations' rows and change them as editors there.
Saves and deletes are journaled by the base class; the signals in scheduling/signals.py tell the
clients and the playback worker.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils import formats
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from kombu.exceptions import OperationalError as BrokerError

from library.models import Genre, Playlist, Track
from radio.admin import ReadOnlyAdminMixin, StationScopedAdmin
from radio.models import Station
from radio.services import ADMIN_ROLES, stations_for
from scheduling.models import CalendarEvent, CalendarSource, ProgramSlot

logger = logging.getLogger(__name__)


def editable_stations(user) -> QuerySet[Station]:
    """Stations where the user may change the programme (editor or admin)."""
    if user.is_superuser:
        return Station.objects.all()
    return Station.objects.filter(memberships__user=user, memberships__role__in=ADMIN_ROLES).distinct()


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def content_display(obj: CalendarEvent | ProgramSlot) -> str:
    """"Playlist: Morning", in the admin's language."""
    if not obj.content_kind:
        return "—"
    target = obj.track or obj.playlist or obj.genre or getattr(obj, "show_name", "") or obj.ref
    kind = obj.get_content_kind_display()
    return f"{kind}: {target}" if target else str(kind)


class ScheduleAdmin(StationScopedAdmin):
    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if stations_for(request.user).count() > 1:
            filters.append(("station", admin.RelatedOnlyFieldListFilter))
        return filters


# --- Calendars ----------------------------------------------------------------

@admin.register(CalendarSource)
class CalendarSourceAdmin(ScheduleAdmin):
    list_display = ["name", "calendar_id", "station", "enabled", "interval_seconds", "last_sync_at",
                    "last_error_short"]
    list_filter = ["enabled"]
    list_select_related = ["station"]
    search_fields = ["name", "calendar_id"]
    actions = ["sync_now"]
    readonly_fields = ["time_zone", "window_start", "window_end", "last_sync_at", "last_full_sync_at",
                       "last_error"]
    fieldsets = [
        (None, {"fields": ["station", "calendar_id", "name", "enabled"]}),
        (_("Sync"), {"fields": ["interval_seconds", "window_days", "write_back"]}),
        (_("Events"), {"fields": ["default_mode", "default_fill", "priority"]}),
        (_("Last sync"), {"fields": readonly_fields}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # A calendar's station is fixed: its events and slots' mirrors belong to it.
        return [*self.readonly_fields, "station"] if obj is not None else self.readonly_fields

    @admin.display(description=_("last error"))
    def last_error_short(self, obj: CalendarSource) -> str:
        return shorten(obj.last_error)

    @admin.action(description=_("Sync now"), permissions=["change"])
    def sync_now(self, request, queryset):
        from scheduling.tasks import calendar_sync_request

        # A sync reads all the station's enabled calendars: one request per station.
        stations = list(editable_stations(request.user).filter(
            pk__in=queryset.filter(enabled=True).values("station_id")).order_by("name"))
        if not stations:
            self.message_user(request, _("Only enabled calendars sync: enable one first."), messages.WARNING)
            return
        try:
            for station in stations:
                calendar_sync_request(station=station, actor=request.user)
        except BrokerError:
            logger.exception("calendar sync not queued: broker unavailable")
            self.message_user(request, _("The task queue is unavailable; try again shortly."), messages.ERROR)
            return
        self.message_user(request, ngettext(
            "Sync queued for %(stations)s.", "Sync queued for %(stations)s.", len(stations)) % {
            "stations": ", ".join(s.name for s in stations)}, messages.SUCCESS)


# --- Calendar events (the mirror) ----------------------------------------------------

@admin.register(CalendarEvent)
class CalendarEventAdmin(ReadOnlyAdminMixin, ScheduleAdmin):
    """What the calendars said, as last synced: fix an event in Google Calendar, not here."""

    list_display = ["starts_local", "summary", "status", "problem_short", "content", "calendar"]
    list_filter = ["status", ("calendar", admin.RelatedOnlyFieldListFilter), "all_day"]
    list_select_related = ["station", "calendar", "track", "playlist", "genre"]
    search_fields = ["summary"]
    date_hierarchy = "starts_at"
    ordering = ["starts_at", "id"]

    @admin.display(description=_("starts"), ordering="starts_at")
    def starts_local(self, obj: CalendarEvent) -> str:
        """In the station's zone, where the programme is planned (the admin's own is UTC)."""
        if obj.starts_at is None:
            return "—"
        local = obj.starts_at.astimezone(ZoneInfo(obj.station.time_zone))
        if obj.all_day:
            return formats.date_format(local.date(), "DATE_FORMAT")
        return formats.date_format(local, "DATETIME_FORMAT")

    @admin.display(description=_("problem"))
    def problem_short(self, obj: CalendarEvent) -> str:
        return shorten(obj.problem)

    @admin.display(description=_("plays"))
    def content(self, obj: CalendarEvent) -> str:
        return content_display(obj)


# --- Programme slots ----------------------------------------------------------

class ProgramSlotForm(forms.ModelForm):
    # Not required here: the model's clean() says what is missing, once.
    weekdays = forms.TypedMultipleChoiceField(
        label=_("days of the week"), choices=ProgramSlot.WEEKDAYS, coerce=int, required=False,
        widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ProgramSlot
        fields = ["station", "name", "enabled", "weekdays", "start_time", "end_time", "first_day", "last_day",
                  "content_kind", "track", "playlist", "genre", "show_name", "mode", "fill", "priority"]


@admin.register(ProgramSlot)
class ProgramSlotAdmin(ScheduleAdmin):
    form = ProgramSlotForm
    list_display = ["name", "station", "days", "start_time", "end_time", "content", "mode", "priority",
                    "enabled"]
    list_filter = ["enabled", "mode", "content_kind"]
    list_select_related = ["station", "track", "playlist", "genre"]
    search_fields = ["name", "show_name"]
    autocomplete_fields = ["track"]
    fieldsets = [
        (None, {"fields": ["station", "name", "enabled"]}),
        (_("When (in the station's time zone)"), {"fields": ["weekdays", ("start_time", "end_time"),
                                                            ("first_day", "last_day")]}),
        (_("What plays"), {"fields": ["content_kind", "track", "playlist", "genre", "show_name", "mode", "fill",
                                      "priority"]}),
    ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model in (Track, Playlist, Genre) and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(
                station__in=editable_stations(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:  # a slot's choices come from its own station
            for name in ("playlist", "genre"):
                field = form.base_fields.get(name)
                if field is not None:
                    field.queryset = field.queryset.filter(station=obj.station)
        return form

    @admin.display(description=_("days"))
    def days(self, obj: ProgramSlot) -> str:
        if sorted(obj.weekdays or []) == list(range(7)):
            return str(_("every day"))
        names = dict(ProgramSlot.WEEKDAYS)
        return ", ".join(str(names.get(day, day)) for day in obj.weekdays or [])

    @admin.display(description=_("plays"))
    def content(self, obj: ProgramSlot) -> str:
        return content_display(obj)
