"""Query-string filters for the as-run log (django-filter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField

from library.filters import IdFilter
from library.models import Track
from playback.models import PlayerCommand, PlayLog, Reason

# A day inside Python's datetime range at both ends: the value can be shown in any station's
# time zone (offsets up to ±14 h) and `to` stepped back a microsecond without overflowing.
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


class InstantField(IsoDateTimeField):
    """An ISO 8601 date-time that stays one in UTC and in every time zone; read as UTC."""

    default_error_messages = {
        "out_of_range": _("Enter a date-time between %(earliest)s and %(latest)s (UTC)."),
    }

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            in_utc = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+03:00 is still year 0 in UTC
            in_utc = None
        if in_utc is None or not EARLIEST <= in_utc <= LATEST:
            raise ValidationError(self.error_messages["out_of_range"], code="out_of_range", params={
                "earliest": EARLIEST.date().isoformat(), "latest": LATEST.date().isoformat()})
        # In UTC: PostgreSQL refuses offsets past ±15:59 that ISO 8601 (and Python) allow.
        return in_utc


class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = InstantField


class PlayLogFilter(django_filters.FilterSet):
    # `from` is a Python keyword: declared as `from_` and renamed below.
    from_ = InstantFilter(
        field_name="started_at", lookup_expr="gte",
        label=_("started at or after (ISO 8601 date-time, e.g. 2025-05-01T00:00:00+03:00)"))
    to = InstantFilter(
        field_name="started_at", lookup_expr="lt",
        label=_("started before (ISO 8601 date-time, e.g. 2025-05-02T00:00:00+03:00)"))
    outcome = django_filters.ChoiceFilter(choices=PlayLog.Outcome.choices)
    kind = django_filters.ChoiceFilter(choices=Track.Kind.choices)
    reason = django_filters.ChoiceFilter(choices=Reason.choices)
    track = IdFilter(field_name="track_id", label=_("track id"))

    class Meta:
        model = PlayLog
        fields = ["outcome", "kind", "reason", "track"]


PlayLogFilter.base_filters["from"] = PlayLogFilter.base_filters.pop("from_")


class PlayerCommandFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(choices=PlayerCommand.Action.choices)
    status = django_filters.ChoiceFilter(choices=PlayerCommand.Status.choices)

    class Meta:
        model = PlayerCommand
        fields = ["action", "status"]
