"""The WebSocket Origin check: scheme, host and port must match exactly.

A browser sends the session cookie with a WebSocket handshake whatever page opened it,
and the page's origin in `Origin`: accepting a foreign origin is what cross-site
WebSocket hijacking needs. So a socket is opened only for a page of this site — its
origin is the handshake's own (`https` when the socket came in over TLS, else `http`,
with the `Host` the client asked for, which must be one of ALLOWED_HOSTS) — or for an
origin listed exactly in CSRF_TRUSTED_ORIGINS or WEBSOCKET_ALLOWED_ORIGINS (the same
rule Django's CSRF check applies to forms). channels' OriginValidator fed with
ALLOWED_HOSTS compared host names only: `http://localhost:1` passed for `localhost`.

A refused origin is refused at the handshake (HTTP 403): the socket is never accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

from radio.middleware import scope_headers

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host (lower case), port


def parse_origin(value: str, *, pattern: bool = False) -> Origin | None:
    """`https://radio.example:8443` → ("https", "radio.example", 8443); None if it is no origin.

    An origin has a scheme and a host and nothing after the port (browsers send exactly
    that). `pattern`: a setting's entry, which may end in `/` and name `*.example.com`.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if (scheme not in DEFAULT_PORTS or not host or parts.query or parts.fragment or "@" in parts.netloc
            or parts.path not in (("", "/") if pattern else ("",)) or ("*" in host and not pattern)):
        return None
    if "*" in host and not (host.startswith("*.") and "*" not in host[2:]):
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _matches(origin: Origin, pattern: Origin) -> bool:
    scheme, host, port = pattern
    if (origin[0], origin[2]) != (scheme, port):
        return False
    if host.startswith("*."):  # as CSRF_TRUSTED_ORIGINS: any subdomain
        return origin[1].endswith(host[1:])
    return origin[1] == host


def _header(headers: dict[str, str], meta_name: str) -> str | None:
    """A handshake header by its Django META name (`HTTP_X_FORWARDED_PROTO`)."""
    return headers.get(meta_name.removeprefix("HTTP_").replace("_", "-").lower())


def own_origin(scope: dict) -> Origin | None:
    """The origin of a page of this site that may open this socket; None if the host is not ours.

    As Django's `request.is_secure()` and `get_host()` (SECURE_PROXY_SSL_HEADER and
    USE_X_FORWARDED_HOST behind a proxy that sets them).
    """
    headers = scope_headers(scope)
    secure = scope.get("scheme", "ws") in ("wss", "https")
    if settings.SECURE_PROXY_SSL_HEADER:
        name, wanted = settings.SECURE_PROXY_SSL_HEADER
        forwarded = _header(headers, name)
        if forwarded is not None:
            secure = forwarded.split(",", 1)[0].strip() == wanted
    host = (settings.USE_X_FORWARDED_HOST and headers.get("x-forwarded-host")) or headers.get("host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed):
        return None
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def trusted_origins(values: Iterable[str], *, setting: str) -> list[Origin]:
    """A setting's origins, parsed; ImproperlyConfigured names the entry that is not one."""
    origins = []
    for value in values:
        parsed = parse_origin(value, pattern=True)
        if parsed is None:
            raise ImproperlyConfigured(
                f"{setting}: {value!r} is not an origin: write scheme://host[:port], e.g. "
                "https://radio.example.com (scheme, host and port must match exactly).")
        origins.append(parsed)
    return origins


class ExactOriginValidator:
    """ASGI middleware for WebSockets: refuse (HTTP 403 at the handshake) any other origin."""

    def __init__(self, application) -> None:
        self.application = application
        # Checked at start-up, so that a malformed entry stops the server with a clear error.
        self.trusted = trusted_origins(settings.WEBSOCKET_ALLOWED_ORIGINS, setting="WEBSOCKET_ALLOWED_ORIGINS")
        self.trusted += trusted_origins(settings.CSRF_TRUSTED_ORIGINS, setting="CSRF_TRUSTED_ORIGINS")

    def allows(self, scope: dict) -> bool:
        values = [value for name, value in scope.get("headers") or [] if name.lower() == b"origin"]
        if len(values) != 1:
            return False  # none (not a browser page: programs send the site's origin too) or ambiguous
        origin = parse_origin(values[0].decode("latin-1"))
        if origin is None:
            return False
        own = own_origin(scope)
        return origin == own or any(_matches(origin, pattern) for pattern in self.trusted)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or self.allows(scope):
            return await self.application(scope, receive, send)
        origin = next((v.decode("latin-1") for n, v in scope.get("headers") or [] if n.lower() == b"origin"),
                      None)
        logger.info("websocket path=%s refused at the handshake: origin %r is not this site's",
                    scope.get("path"), origin)
        return await WebsocketDenier()(scope, receive, send)
