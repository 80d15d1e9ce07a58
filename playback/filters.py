"""Query-string filters for the as-run log (django-filter)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from library.models import Track
from playback.models import PlayerCommand, PlayLog, Reason


class PlayLogFilter(django_filters.FilterSet):
    # `from` is a Python keyword: declared as `from_` and renamed below.
    from_ = django_filters.IsoDateTimeFilter(
        field_name="started_at", lookup_expr="gte",
        label=_("started at or after (ISO 8601 date-time, e.g. 2025-05-01T00:00:00+03:00)"))
    to = django_filters.IsoDateTimeFilter(
        field_name="started_at", lookup_expr="lt",
        label=_("started before (ISO 8601 date-time, e.g. 2025-05-02T00:00:00+03:00)"))
    outcome = django_filters.ChoiceFilter(choices=PlayLog.Outcome.choices)
    kind = django_filters.ChoiceFilter(choices=Track.Kind.choices)
    reason = django_filters.ChoiceFilter(choices=Reason.choices)
    track = django_filters.NumberFilter(field_name="track_id", label=_("track id"))

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
