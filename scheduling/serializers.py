"""Schedule API shapes: calendars, their mirrored events, programme slots, and the planned schedule.

A slot is checked by the model's own `clean()` (the admin runs the same), turned into 400 field
errors. The schedule shapes document `scheduling.planner.plan_data`, which also feeds the
`schedule_update` message of the realtime feed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from library.models import Genre, Playlist, Track
from radio.serializers import IntegerPKField
from scheduling.models import CalendarEvent, CalendarSource, ContentKind, Fill, Mode, ProgramSlot

# A SmallIntegerField's range: DRF does not read it from the model, and PostgreSQL refuses more.
PRIORITY = {"min_value": -(2**15), "max_value": 2**15 - 1}

# --- Calendars ----------------------------------------------------------------


class CalendarSourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = CalendarSource
        fields = ["id", "calendar_id", "name", "enabled", "interval_seconds", "window_days", "default_mode",
                  "default_fill", "priority", "write_back", "time_zone", "last_sync_at", "last_full_sync_at",
                  "last_error"]
        read_only_fields = ["id", "time_zone", "last_sync_at", "last_full_sync_at", "last_error"]
        extra_kwargs = {"priority": PRIORITY}

    def validate_calendar_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError(_("Give the calendar's id."))
        clash = CalendarSource.objects.filter(station=self.context["view"].station, calendar_id=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(_("This station already plays from this calendar."))
        return value


class CalendarEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CalendarEvent
        fields = ["id", "calendar", "event_id", "recurring_event_id", "summary", "description", "starts_at",
                  "ends_at", "all_day", "time_zone", "status", "problem", "content_kind", "ref", "track",
                  "playlist", "genre", "mode", "fill", "updated"]
        read_only_fields = fields


# --- Programme slots ------------------------------------------------------------


class StationRowField(IntegerPKField):
    """The id of a track, playlist or genre of the station in the URL; another station's is refused."""

    default_error_messages = {"does_not_exist": _("No such {model} on this station (id {pk_value}).")}

    def __init__(self, model, **kwargs) -> None:
        self.model = model
        super().__init__(**kwargs)

    def get_queryset(self):
        view = self.context.get("view")
        station = getattr(view, "station", None) if view is not None else None
        return self.model.objects.none() if station is None else self.model.objects.filter(station=station)

    def fail(self, key, **kwargs):
        if key == "does_not_exist":
            kwargs["model"] = self.model._meta.verbose_name
        super().fail(key, **kwargs)


class WeekdaysField(serializers.ListField):
    child = serializers.IntegerField(min_value=0, max_value=6)

    def __init__(self, **kwargs) -> None:
        super().__init__(allow_empty=False, max_length=7, **kwargs)

    def to_internal_value(self, data):
        days = super().to_internal_value(data)
        if len(set(days)) != len(days):
            raise serializers.ValidationError(_("Each day only once."))
        return sorted(days)


# A model error on the left is reported when the request touched one of the fields on the right
# (or on create): a PATCH that only disables a slot whose playlist was deleted must still work.
CLEAN_ERROR_SOURCES = {
    "weekdays": {"weekdays"},
    "last_day": {"first_day", "last_day"},
    **{field: {"content_kind", "track", "playlist", "genre", "show_name"}
       for field in ("track", "playlist", "genre", "show_name")},
}


class ProgramSlotSerializer(serializers.ModelSerializer):
    weekdays = WeekdaysField(help_text=_("Days the slot starts on: 0 = Monday … 6 = Sunday, each once."))
    track = StationRowField(Track, required=False, allow_null=True)
    playlist = StationRowField(Playlist, required=False, allow_null=True)
    genre = StationRowField(Genre, required=False, allow_null=True)

    class Meta:
        model = ProgramSlot
        fields = ["id", "name", "weekdays", "start_time", "end_time", "content_kind", "track", "playlist",
                  "genre", "show_name", "mode", "fill", "priority", "first_day", "last_day", "enabled",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"priority": PRIORITY}

    def validate(self, attrs):
        slot = ProgramSlot(station=self.context["view"].station)
        if self.instance is not None:
            for field in self.Meta.fields:
                if field not in self.Meta.read_only_fields:
                    setattr(slot, field, getattr(self.instance, field))
        for field, value in attrs.items():
            setattr(slot, field, value)
        try:
            slot.clean()
        except DjangoValidationError as exc:
            errors = {field: messages for field, messages in exc.message_dict.items()
                      if self.instance is None or CLEAN_ERROR_SOURCES.get(field, {field}) & attrs.keys()}
            if errors:
                raise serializers.ValidationError(errors) from exc
        return attrs


# --- The planned schedule ----------------------------------------------------------

MAX_WINDOW = timedelta(days=14)
DEFAULT_WINDOW = timedelta(hours=24)
# Far enough inside Python's datetime range that a window, a day around it and any zone fit.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


class InstantError(ValueError):
    """Why a text is not an instant the schedule takes (a message for people)."""


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time with its offset (`Z`, `+03:00`), as UTC. Without an offset it is refused:
    which zone a bare time means (the server's, the station's) would be a guess."""
    # A "+" left unencoded in a query string arrives as a space: "…T08:00:00 03:00".
    text = re.sub(r"(:\d{2}(?:\.\d+)?) (\d{2}(?::?\d{2})?)$", r"\1+\2", text.strip())
    try:
        value = parse_datetime(text)
    except ValueError:  # well formed, but no such day or hour
        value = None
    if value is None:
        raise InstantError(_("Enter an ISO 8601 date-time, e.g. 2026-03-27T00:00:00+03:00."))
    if value.tzinfo is None:
        raise InstantError(_("Give the UTC offset too, e.g. 2026-03-27T00:00:00+03:00 or "
                             "2026-03-26T21:00:00Z."))
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+03:00 is in year 0 in UTC
        value = None
    if value is None or not EARLIEST <= value <= LATEST:
        raise InstantError(_("Enter a date-time from %(earliest)s to %(latest)s.") % {
            "earliest": EARLIEST.date().isoformat(), "latest": LATEST.date().isoformat()})
    return value


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    def to_internal_value(self, data) -> datetime:
        if not isinstance(data, str):
            raise serializers.ValidationError(_("Enter an ISO 8601 date-time, e.g. 2026-03-27T00:00:00+03:00."))
        try:
            return parse_instant(data)
        except InstantError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class ScheduleWindowSerializer(serializers.Serializer):
    """The query of `schedule` and `schedule/conflicts`."""

    start = InstantField(required=False, help_text=_("From (ISO 8601 with offset); now when not given."))
    end = InstantField(required=False, help_text=_(
        "Until, exclusive (ISO 8601 with offset); 24 hours after `start` when not given. At most 14 days "
        "after `start`."))

    def validate(self, attrs):
        start = attrs.get("start") or timezone.now().astimezone(UTC)
        end = attrs.get("end") or start + DEFAULT_WINDOW
        if end <= start:
            raise serializers.ValidationError({"end": [_("The end must come after the start.")]})
        if end - start > MAX_WINDOW:
            raise serializers.ValidationError({"end": [
                _("The window is at most %(days)d days.") % {"days": MAX_WINDOW.days}]})
        return {"start": start, "end": end}


class PlannedEntrySerializer(serializers.Serializer):
    key = serializers.CharField(help_text=_("`event:<id>` or `slot:<id>:<start, UTC ISO>`."))
    start = serializers.DateTimeField(help_text=_("When it plays (UTC), after the priority rule."))
    end = serializers.DateTimeField()
    source = serializers.CharField(help_text=_("`calendar` or `slot`."))
    hard = serializers.BooleanField()
    mode = serializers.ChoiceField(choices=Mode.choices)
    priority = serializers.IntegerField()
    label = serializers.CharField(allow_blank=True)
    content_kind = serializers.ChoiceField(choices=ContentKind.choices, allow_blank=True)
    track_id = serializers.IntegerField(allow_null=True)
    playlist_id = serializers.IntegerField(allow_null=True)
    genre_id = serializers.IntegerField(allow_null=True)
    show_name = serializers.CharField(allow_blank=True)
    fill = serializers.ChoiceField(choices=Fill.choices)
    scheduled_start = serializers.DateTimeField(allow_null=True, help_text=_(
        "When it was asked to start, if another entry moved it; else null."))
    scheduled_end = serializers.DateTimeField(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField(), help_text=_("What changed it, and why."))


class ScheduleConflictSerializer(serializers.Serializer):
    winner = serializers.CharField(help_text=_("The key of the entry that kept its time."))
    winner_label = serializers.CharField(allow_blank=True)
    loser = serializers.CharField()
    loser_label = serializers.CharField(allow_blank=True)
    start = serializers.DateTimeField(help_text=_("The overlap (UTC)."))
    end = serializers.DateTimeField()
    outcome = serializers.CharField(help_text=_("`starts late`, `ends early` or `dropped`."))
    reason = serializers.CharField(help_text=_(
        "`hard over soft`, `higher priority`, `calendar over slot` or `earlier start`."))


class ScheduleEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    summary = serializers.CharField(allow_blank=True)
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    all_day = serializers.BooleanField()
    # Text: a second component with this `status` enum would make its schema name a hash.
    status = serializers.CharField(help_text=_("As in `calendar-events`: `unresolved` or `note` here."))
    problem = serializers.CharField(allow_blank=True)
    mode = serializers.ChoiceField(choices=Mode.choices)
    content_kind = serializers.ChoiceField(choices=ContentKind.choices, allow_blank=True)
    ref = serializers.CharField(allow_blank=True)


class ScheduleWindowEchoSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text=_("The window asked for (UTC)."))
    end = serializers.DateTimeField()
    time_zone = serializers.CharField(help_text=_("The station's zone, which slot times are in."))


class ScheduleConflictsSerializer(ScheduleWindowEchoSerializer):
    conflicts = ScheduleConflictSerializer(many=True)


class ScheduleSerializer(ScheduleConflictsSerializer):
    entries = PlannedEntrySerializer(many=True, help_text=_("The timeline, in order of start."))
    unresolved = ScheduleEventSerializer(many=True, help_text=_("Calendar events that cannot play, and why."))
    notes = ScheduleEventSerializer(many=True, help_text=_("All-day calendar events: shown, never on air."))
