"""Middleware: JSON 503 on outages, sign-in lockouts, early refusal of bodies, one-line 4xx logs.

API requests answer JSON 503 when the database or Redis is down, never an HTML 500.

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

import json
import logging
import re
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

import redis.exceptions
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Seconds a client should wait before trying again; a restart or failover takes about this.
RETRY_AFTER_SECONDS = 10
# Room for the multipart envelope (boundaries, other fields) around an uploaded file.
UPLOAD_ENVELOPE_BYTES = 64 * 1024

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


# --- Sign-in lockout -----------------------------------------------------------

class SignInLockoutMiddleware(MiddlewareMixin):
    """A sign-in refused by django-axes answers 429: JSON under /api/, the lock page elsewhere.

    axes marks the request (`axes_locked_out`) when an account or address is
    locked; the sign-in view itself only saw "no user". axes' own middleware
    does this job too, but its async path (the one uvicorn takes) passes the
    credentials where the response belongs.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not getattr(request, "axes_locked_out", False) or response.status_code == 429:
            return response
        return signin_locked_response(request)


def signin_locked_response(request: HttpRequest, username: str | None = None) -> HttpResponse:
    from radio.auth import signin_locked_message, signin_retry_after

    if username is None:
        credentials = getattr(request, "axes_credentials", None) or {}
        username = credentials.get("username") or request.POST.get("username")
    seconds = signin_retry_after(request, username)
    message = signin_locked_message(seconds)
    if request.path_info.startswith(API_PREFIX):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "registration/locked_out.html",
                          {"message": message, "login_url": request.path}, status=429)
    response["Retry-After"] = str(seconds)
    return response


# --- JSON 404 under /api/ --------------------------------------------------------

def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON `{"detail": …}` for /api/ URLs, Django's page for the rest."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return page_not_found(request, exception)


# --- One line per refused request ---------------------------------------------------

class ClientErrorOneLine(logging.Filter):
    """Drop the traceback from django.request's 4xx records (403 Permission denied, 400 …).

    Django logs a PermissionDenied with its exception attached, so every refused
    page wrote a full traceback. A refusal is not a fault: one line with the
    path and the reason is what an operator needs. 5xx records keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and 400 <= status < 500:
            exc = record.exc_info[1]
            reason = str(exc) if exc is not None else ""
            if reason:
                record.msg = f"{record.msg} (%s)"
                record.args = (*(record.args or ()), reason)
            record.exc_info = None
            record.exc_text = None
        return True


# --- Early refusal, before the body is read (ASGI) ----------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class RequestLimitMiddleware:
    """ASGI middleware in front of Django that refuses a request before its body is read.

    Django's ASGI handler reads the whole body into a temporary file before any
    view (or authentication) runs, so a 100 MB anonymous POST was received in full
    before its 401. This looks at the headers first:

    - under /api/, a request that carries a body (Content-Length > 0 or chunked)
      with neither an Authorization header nor a session cookie is answered 401
      at once. Their presence is not authentication — Django checks them — it
      only says the sender means to sign in. The token endpoint is exempt;
    - a Content-Length above the path's cap (REQUEST_MAX_BODY_KB, or the upload
      limit on REQUEST_UPLOAD_PATHS) is answered 413 at once;
    - a chunked body is counted as it arrives and cut with 413 when it crosses the cap.

    Refusals carry `Connection: close`: the server then stops reading the socket
    instead of draining the rest of the body.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.upload_paths = [re.compile(p) for p in settings.REQUEST_UPLOAD_PATHS]
        self.anonymous_paths = {"/api/v1/auth/token"}

    def cap_for(self, path: str) -> int:
        if any(p.match(path) for p in self.upload_paths):
            # library.services.upload_limit_bytes() reads the same setting; radio imports no other app.
            return int(float(settings.LIBRARY_MAX_UPLOAD_MB) * 1024 * 1024) + UPLOAD_ENVELOPE_BYTES
        return settings.REQUEST_MAX_BODY_KB * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope_headers(scope)
        path = scope.get("path", "")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            await _refuse(send, 400, _("Content-Length is not a number."))
            return
        has_body = chunked or length > 0
        if (has_body and path.startswith(API_PREFIX) and path not in self.anonymous_paths
                and not _has_credentials(headers)):
            logger.info("%s %s refused before its body: no credentials", scope.get("method"), path)
            await _refuse(send, 401, _("Authentication credentials were not provided."),
                          {"WWW-Authenticate": "Token"})
            return
        cap = self.cap_for(path)
        if length > cap:
            logger.info("%s %s refused before its body: Content-Length %s over %s",
                        scope.get("method"), path, length, cap)
            await _refuse(send, 413, _too_large(cap))
            return
        if not chunked:
            await self.app(scope, receive, send)
            return
        await self._capped(scope, receive, send, cap)

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        received = 0
        refused = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap and not refused:
                    refused = True
                    logger.info("%s %s refused: chunked body crossed %s bytes",
                                scope.get("method"), scope.get("path"), cap)
                    await _refuse(send, 413, _too_large(cap))
                    # Django sees the client gone and drops the request without answering.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)


def scope_headers(scope: Scope) -> dict[str, str]:
    """An ASGI scope's headers by lower-case name, decoded as HTTP says (latin-1)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers") or []}


def _has_credentials(headers: dict[str, str]) -> bool:
    if headers.get("authorization", "").strip():
        return True
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except CookieError:
        return False
    return settings.SESSION_COOKIE_NAME in cookie


def _too_large(cap: int) -> str:
    return _("The request body is larger than the limit of %(limit)s.") % {"limit": filesizeformat(cap)}


async def _refuse(send: Send, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": str(detail)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
