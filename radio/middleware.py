"""API requests answer JSON 503 when the database or Redis is down, never an HTML 500.

DRF turns only its own exceptions into responses and re-raises the rest
(`APIView.handle_exception` → `raise_uncaught_exception`), so a lost database
or Redis reaches Django's handler, which would render its HTML 500 page. This
middleware's `process_exception` answers first for `/api/` paths, once for
every endpoint. Pages keep Django's error page.

Only errors that mean "the dependency is away" are caught: Django's
`OperationalError` (connection refused or lost, timeouts, too many clients)
and `InterfaceError` (connection already closed), redis-py's `ConnectionError`
and `TimeoutError` (the cache and channels_redis raise these too) and kombu's
`OperationalError` (Celery could not reach its broker). An `IntegrityError` or
`ProgrammingError` is a bug, not an outage, and stays a 500.
"""

from __future__ import annotations

import logging

import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Seconds a client should wait before trying again; a restart or failover takes about this.
RETRY_AFTER_SECONDS = 10

DATABASE_DOWN = (OperationalError, InterfaceError)
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, BrokerError)


def dependency_down(exc: BaseException) -> str | None:
    """"database" or "redis" if `exc` (or what it was raised from) means that one is away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DATABASE_DOWN):
            return "database"
        if isinstance(current, REDIS_DOWN):
            return "redis"
        current = current.__cause__
    return None


def outage_response(dependency: str) -> JsonResponse:
    if dependency == "database":
        detail = _("Database unavailable: try again in a few seconds.")
    else:
        detail = _("Redis unavailable: try again in a few seconds.")
    response = JsonResponse({"detail": detail, "unavailable": dependency}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DependencyOutageMiddleware(MiddlewareMixin):
    """Turn a database or Redis outage during an `/api/` request into JSON 503 + Retry-After."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        if not request.path_info.startswith(API_PREFIX):
            return None
        dependency = dependency_down(exception)
        if dependency is None:
            return None
        # exc_info explicitly: under ASGI this runs in another thread than the
        # `except` that caught it, where logger.exception would find no exception.
        logger.error("%s %s answered 503: %s unavailable", request.method, request.path,
                     dependency, exc_info=exception)
        return outage_response(dependency)
