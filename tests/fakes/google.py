"""A local fake of the Google endpoints OnAir uses, spoken to over real HTTP.

The real clients (social-core for sign-in, google-api-python-client for the
APIs) are aimed here through the settings' endpoint overrides. Each area of
Google is a small route table; faults can be injected per path prefix.

The APIs' discovery documents (the ones shipped with googleapiclient) are served
with their root URL rewritten to this server, so a client built with
`discoveryServiceUrl=f"{fake.url}/discovery/v1/apis/{{api}}/{{apiVersion}}/rest"`
sends every request, media uploads included, here over plain HTTP. Drive v3 lives
in `drive.py` (`fake.drive`), Gmail v1 in `gmail.py` (`fake.gmail`), Calendar v3 in
`calendar.py` (`fake.calendar`); all demand
`Authorization: Bearer <token>` with a token the fake issued or was told about
(`allow_token`).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import googleapiclient


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def header(self, name: str, default: str = "") -> str:
        """A request header, whatever case the client spelled it in (httplib2 lowercases)."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), default)

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


@dataclass
class Response:
    status: int = 200
    body: bytes | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Send the full Content-Length but hang up after this many body bytes.
    truncate_at: int | None = None


_STATUS = {400: ("INVALID_ARGUMENT", "badRequest"), 401: ("UNAUTHENTICATED", "authError"),
           403: ("PERMISSION_DENIED", "forbidden"), 404: ("NOT_FOUND", "notFound"),
           409: ("ALREADY_EXISTS", "conflict"), 410: ("FAILED_PRECONDITION", "gone"),
           416: ("OUT_OF_RANGE", "requestedRangeNotSatisfiable"),
           429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded"), 500: ("INTERNAL", "backendError"),
           503: ("UNAVAILABLE", "backendError")}


def google_error(status: int, message: str, reason: str | None = None,
                 location: str | None = None) -> Response:
    """An error in the JSON shape Google APIs answer with."""
    name, default_reason = _STATUS.get(status, ("UNKNOWN", "unknown"))
    detail: dict[str, str] = {"message": message, "domain": "global",
                              "reason": reason or default_reason}
    if location:
        detail.update(location=location, locationType="parameter")
    return Response(status, {"error": {"code": status, "message": message, "errors": [detail],
                                       "status": name}})


# --- `fields`, the partial-response parameter every Google API takes -------------
# "nextPageToken,files(id,name)", "*", "changes/file/id"

_FIELD_NAME = re.compile(r"\s*([\w*]+(?:/[\w*]+)*)\s*")


def parse_fields(text: str) -> dict[str, Any]:
    """A tree {name: subtree or None (= everything)}."""
    tree, pos = _parse_field_list(text, 0)
    if pos != len(text):
        raise ValueError(f"Invalid field selection {text}")
    return tree


def _parse_field_list(text: str, pos: int) -> tuple[dict[str, Any], int]:
    tree: dict[str, Any] = {}
    while True:
        match = _FIELD_NAME.match(text, pos)
        if not match:
            raise ValueError(f"Invalid field selection {text}")
        path, pos = match.group(1).split("/"), match.end()
        sub = None
        if text.startswith("(", pos):
            sub, pos = _parse_field_list(text, pos + 1)
            if not text.startswith(")", pos):
                raise ValueError(f"Invalid field selection {text}")
            pos = len(text) - len(text[pos + 1:].lstrip())
        node: dict[str, Any] | None = tree
        for part in path[:-1]:
            if node is None:
                break
            node = node.setdefault(part, {})
        if node is not None:
            if sub is None or node.get(path[-1], {}) is None:
                node[path[-1]] = None
            else:
                node.setdefault(path[-1], {}).update(sub)
        if not text.startswith(",", pos):
            return tree, pos
        pos += 1


def apply_fields(value: Any, tree: dict[str, Any] | None) -> Any:
    """Keep only the selected keys ("*" keeps all at its level)."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: apply_fields(item, tree.get(key)) for key, item in value.items()
            if key in tree or "*" in tree}


_DISCOVERY_DIR = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
_discovery_cache: dict[str, dict] = {}


def discovery_document(api: str, version: str) -> dict | None:
    """The discovery document googleapiclient ships for api/version (loaded once)."""
    key = f"{api}.{version}"
    if key not in _discovery_cache:
        path = _DISCOVERY_DIR / f"{key}.json"
        if not re.fullmatch(r"[\w.]+", key) or not path.exists():
            return None
        _discovery_cache[key] = json.loads(path.read_text())
    return _discovery_cache[key]


@dataclass
class Fault:
    prefix: str
    status: int
    remaining: int
    delay: float = 0.0
    response: Response | None = None  # answered instead of the generic error body


# Real Drive/Gmail/Calendar rate limits (developers.google.com/drive/api/guides/limits,
# .../handle-errors): HTTP 403 with domain "usageLimits" and reason
# userRateLimitExceeded (per-user quota) or rateLimitExceeded (project), or 429.
RATE_LIMIT_MESSAGES = {
    "userRateLimitExceeded": "User Rate Limit Exceeded. Rate of requests for user exceed configured "
                             "project quota. You may consider re-evaluating expected per-user "
                             "traffic to the API and adjust project quota limits accordingly.",
    "rateLimitExceeded": "Rate Limit Exceeded",
}


def rate_limit_error(reason: str = "userRateLimitExceeded") -> Response:
    """The 403 body Google sends for a rate limit (not the `status` of newer APIs: v3 omits it)."""
    message = RATE_LIMIT_MESSAGES[reason]
    return Response(403, {"error": {
        "errors": [{"domain": "usageLimits", "reason": reason, "message": message,
                    "extendedHelp": "https://console.developers.google.com/apis/api/drive.googleapis.com/quotas"}],
        "code": 403, "message": message}})


Route = tuple[str, re.Pattern, Callable[..., Response]]


class FakeGoogle:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        # Sign-in: the Google account the next consent screen "chooses".
        self.next_identity: dict[str, Any] | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.code_scopes: dict[str, str] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self._discovery: dict[str, bytes] = {}
        self._add_oauth_routes()
        self.route("GET", r"/discovery/v1/apis/(?P<api>[^/]+)/(?P<version>[^/]+)/rest",
                   self._discovery_route)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        from tests.fakes.calendar import FakeCalendar
        from tests.fakes.drive import FakeDrive
        from tests.fakes.gmail import FakeGmail

        self.drive = FakeDrive(self)
        self.gmail = FakeGmail(self)
        self.calendar = FakeCalendar(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeGoogle:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, pattern: str, handler: Callable[..., Response]) -> None:
        self.routes.append((method, re.compile(pattern + r"$"), handler))

    def inject(self, prefix: str, status: int, times: int = 1, delay: float = 0.0) -> None:
        """The next `times` requests under `prefix` answer `status` (after `delay` s).

        A status below 400 only delays: the request is then answered as usual.
        """
        with self.lock:
            self.faults.append(Fault(prefix, status, times, delay))

    def inject_rate_limit(self, prefix: str, times: int = 1,
                          reason: str = "userRateLimitExceeded") -> None:
        """The next `times` requests under `prefix` get Google's rate-limit 403."""
        with self.lock:
            self.faults.append(Fault(prefix, 403, times, response=rate_limit_error(reason)))

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(prefix))

    # --- API access tokens -------------------------------------------------

    def allow_token(self, token: str) -> None:
        """Accept `Authorization: Bearer <token>` on the API routes."""
        with self.lock:
            self.tokens[token] = {}

    def issue_refresh_token(self) -> str:
        """A refresh token the token endpoint will exchange for access tokens."""
        refresh = "1//" + secrets.token_urlsafe(32)
        with self.lock:
            self.refresh_tokens[refresh] = {}
        return refresh

    def revoke_all(self) -> None:
        """Forget every access token (refresh tokens stay good): APIs answer 401."""
        with self.lock:
            self.tokens.clear()

    def _new_access_token(self, identity: dict[str, Any]) -> str:
        access = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[access] = identity
        return access

    def authorized(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        """Wrap an API route: a known Bearer token or 401 in Google's shape."""
        def check(req: Request, **kwargs: str) -> Response:
            scheme, _, token = req.header("Authorization").partition(" ")
            if scheme.lower() != "bearer" or token not in self.tokens:
                resp = google_error(
                    401, "Request had invalid authentication credentials. Expected OAuth 2 "
                    "access token, login cookie or other valid authentication credential.")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
                return resp
            return handler(req, **kwargs)
        return check

    def _discovery_route(self, req: Request, api: str, version: str) -> Response:
        if f"{api}.{version}" not in self._discovery:
            doc = discovery_document(api, version)
            if doc is None:
                return google_error(404, f"no discovery document for {api} {version}")
            root = self.url + "/"
            doc = {**doc, "rootUrl": root, "mtlsRootUrl": root,
                   "baseUrl": root + doc.get("servicePath", "")}
            self._discovery[f"{api}.{version}"] = json.dumps(doc).encode()
        return Response(200, self._discovery[f"{api}.{version}"],
                        {"Content-Type": "application/json; charset=UTF-8"})

    # --- OAuth 2 sign-in ---------------------------------------------------

    def sign_in_as(self, email: str, *, name: str = "", verified: bool = True,
                   sub: str | None = None) -> None:
        self.next_identity = {
            "sub": sub or str(abs(hash(email))), "email": email, "email_verified": verified,
            "name": name or email.split("@")[0], "given_name": name.split(" ")[0] if name else "",
            "family_name": " ".join(name.split(" ")[1:]) if name else "",
            "hd": email.split("@")[1],
        }

    def _add_oauth_routes(self) -> None:
        def authorize(req: Request) -> Response:
            if self.next_identity is None:
                return Response(400, {"error": "no account chosen in the fake"})
            code = secrets.token_urlsafe(8)
            self.codes[code] = self.next_identity
            self.code_scopes[code] = req.arg("scope") or "openid email profile"
            target = req.arg("redirect_uri") or ""
            params = urlencode({"code": code, "state": req.arg("state", "")})
            return Response(302, headers={"Location": f"{target}?{params}"})

        def token(req: Request) -> Response:
            form = req.form()
            if form.get("grant_type") == "refresh_token":
                identity = self.refresh_tokens.get(form.get("refresh_token", ""))
                if identity is None:
                    return Response(400, {"error": "invalid_grant",
                                          "error_description": "Token has been expired or revoked."})
                body = {"access_token": self._new_access_token(identity), "token_type": "Bearer",
                        "expires_in": 3599}
                if form.get("scope"):
                    body["scope"] = form["scope"]
                return Response(200, body)
            code = form.get("code", "")
            identity = self.codes.pop(code, None)
            if identity is None:
                return Response(400, {"error": "invalid_grant"})
            refresh = "1//" + secrets.token_urlsafe(32)
            with self.lock:
                self.refresh_tokens[refresh] = identity
            return Response(200, {"access_token": self._new_access_token(identity),
                                  "refresh_token": refresh, "token_type": "Bearer",
                                  "expires_in": 3599,
                                  "scope": self.code_scopes.pop(code, "openid email profile")})

        def userinfo(req: Request) -> Response:
            access = req.header("Authorization").removeprefix("Bearer ")
            identity = self.tokens.get(access)
            if identity is None:
                return Response(401, {"error": "invalid_token"})
            return Response(200, identity)

        self.route("GET", r"/o/oauth2/auth", authorize)
        self.route("POST", r"/o/oauth2/token", token)
        self.route("GET", r"/oauth2/v3/userinfo", userinfo)

    # --- HTTP plumbing -----------------------------------------------------

    def _dispatch(self, req: Request) -> Response:
        with self.lock:
            self.requests.append(req)
            fault = next((f for f in self.faults if req.path.startswith(f.prefix) and f.remaining),
                         None)
            if fault is not None:
                fault.remaining -= 1
        if fault is not None:
            time.sleep(fault.delay)
            if fault.response is not None:
                return fault.response
            if fault.status >= 400:
                return google_error(fault.status, f"injected fault ({fault.status})")
        for method, pattern, handler in self.routes:
            match = pattern.match(req.path)
            if method == req.method and match:
                return self._partial(req, handler(req, **match.groupdict()))
        return Response(404, {"error": {"code": 404, "message": f"no fake for {req.path}"}})

    @staticmethod
    def _partial(req: Request, resp: Response) -> Response:
        """Honour `fields` on any JSON answer (Drive also checks names against its schema)."""
        fields = req.arg("fields")
        if not fields or resp.status >= 300 or not isinstance(resp.body, dict):
            return resp
        try:
            return Response(resp.status, apply_fields(resp.body, parse_fields(fields)), resp.headers)
        except ValueError as exc:
            return google_error(400, str(exc), "invalidParameter", "fields")

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, parsed.path, parse_qs(parsed.query),
                              dict(self.headers.items()), self.rfile.read(length))
                resp = fake._dispatch(req)
                body = resp.body
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    resp.headers.setdefault("Content-Type", "application/json; charset=UTF-8")
                try:
                    self.send_response(resp.status)
                    for key, value in resp.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if resp.truncate_at is None:
                        self.wfile.write(body)
                    else:  # a connection dropped mid-body
                        self.wfile.write(body[:resp.truncate_at])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to tell it

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        return Handler
