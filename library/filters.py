"""Query-string filters for the library API (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from library.models import SyncRun, Track


class TrackFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Track.Kind.choices)
    genre = django_filters.NumberFilter(field_name="genre_id", label=_("genre id"))
    enabled = django_filters.BooleanFilter()
    missing = django_filters.BooleanFilter(method="filter_missing",
                                           label=_("missing from its source"))
    source = django_filters.ChoiceFilter(choices=Track.Source.choices)
    language = django_filters.CharFilter(lookup_expr="iexact")
    analysis = django_filters.ChoiceFilter(choices=Track.Analysis.choices)

    class Meta:
        model = Track
        fields = ["kind", "genre", "enabled", "missing", "source", "language", "analysis"]

    def filter_missing(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(missing_since__isnull=not value)


class SyncRunFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=SyncRun.Kind.choices)
    status = django_filters.ChoiceFilter(choices=SyncRun.Status.choices)

    class Meta:
        model = SyncRun
        fields = ["kind", "status"]
