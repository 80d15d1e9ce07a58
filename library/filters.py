"""Query-string filters for the library API (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import filters
from rest_framework.exceptions import ValidationError

from library.models import Track
from library.search import MAX_QUERY_CHARS, track_search
from radio.models import SyncRun
from radio.serializers import MAX_ID


class IdFilter(django_filters.NumberFilter):
    """A related object's id: a whole number in the bigint range, else 400 on the parameter.

    NumberFilter's DecimalField took `1e30`, `1.5` or `NaN` to the database.
    """

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class SearchFilter(filters.SearchFilter):
    """DRF's search, refusing a NUL byte (PostgreSQL cannot compare text holding one) with a 400."""

    def get_search_terms(self, request):
        value = request.query_params.get(self.search_param, "")
        if "\x00" in value:
            raise ValidationError({self.search_param: [_("Null characters are not allowed.")]})
        return super().get_search_terms(request)


class TrackSearchFilter(SearchFilter):
    """`?search=`: every word in the title, artist or album, best matches first (library/search.py).

    Replaces DRF's `UPPER(col) LIKE '%w%'` over three columns, which no index can serve. An
    explicit `?ordering=` still wins over the relevance order (OrderingFilter runs after this).
    """

    search_description = _("Words to find in the title, artist or album (case, niqqud and accents "
                           "ignored); exact and prefix matches come first unless `ordering` is given.")

    def filter_queryset(self, request, queryset, view):
        value = request.query_params.get(self.search_param, "")
        if "\x00" in value:
            raise ValidationError({self.search_param: [_("Null characters are not allowed.")]})
        if len(value) > MAX_QUERY_CHARS:
            raise ValidationError({self.search_param: [
                _("Search text is limited to %(limit)d characters.") % {"limit": MAX_QUERY_CHARS}]})
        return track_search(queryset, value)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["maxLength"] = MAX_QUERY_CHARS
        return parameters


class TrackFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Track.Kind.choices)
    genre = IdFilter(field_name="genre_id", label=_("genre id"))
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
