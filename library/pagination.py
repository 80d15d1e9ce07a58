"""Page numbers with a capped count: no list request counts every matching row.

DRF's PageNumberPagination runs `SELECT COUNT(*)` over every match before it reads a page: on
a search or a large library that is a second full pass. Here the count stops at a limit
(`SELECT COUNT(*) FROM (SELECT id … LIMIT n + 1)`), without the ordering, which a count does
not need. The limit is COUNT_CAP, or further when the page asked for lies beyond it (the count
then reaches one page past it), so every page stays reachable and `next` is right. A count
that reached its limit is reported with `count_capped: true`: there are more than `count`.
The page itself is read as ids first, then rows (CappedCountPaginator.page).
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

COUNT_CAP = 1000


class CappedCountPaginator(Paginator):
    def __init__(self, *args, cap: int = COUNT_CAP, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cap = cap
        self.wanted = 1
        self.capped = False

    def validate_number(self, number):
        # Known before the count: the count must reach the page after the one asked for.
        try:
            self.wanted = max(1, int(number))
        except (TypeError, ValueError):
            pass  # the base class names the fault
        return super().validate_number(number)

    @cached_property
    def count(self) -> int:
        # Kept inside bigint, whatever page number was asked for (PostgreSQL's LIMIT is a bigint).
        limit = min(max(self.cap, (self.wanted + 1) * self.per_page), 2**62)
        found = self.object_list.order_by().values("pk")[: limit + 1].count()
        self.capped = found > limit
        return min(found, limit)


    def page(self, number):
        # A deferred join: the page's ids first, sorted over narrow rows without the joins,
        # then those rows whole. Sorting 10,000 search matches joined to their station and
        # genre took 45 ms; their ids alone, under 20.
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        rows = {row.pk: row for row in self.object_list.order_by().filter(pk__in=ids)}
        # A row deleted between the two queries is left out of the page.
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)


class CappedCountPagination(PageNumberPagination):
    """PageNumberPagination whose `count` stops at 1,000 (or one page past the page asked for)."""

    django_paginator_class = CappedCountPaginator

    def get_paginated_response(self, data):
        return Response({
            "count": self.page.paginator.count,
            "count_capped": self.page.paginator.capped,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": data,
        })

    def get_paginated_response_schema(self, schema):
        result = super().get_paginated_response_schema(schema)
        result["properties"]["count"]["description"] = str(_(
            "Matches, counted up to %(cap)d (or one page past the page asked for).") % {"cap": COUNT_CAP})
        result["properties"]["count_capped"] = {
            "type": "boolean",
            "description": str(_("True when the count stopped at its limit: there are more than `count`.")),
        }
        result["required"] = [*result["required"], "count_capped"]
        return result
