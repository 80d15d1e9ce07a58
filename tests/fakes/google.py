"""A local fake of the Google endpoints OnAir uses, spoken to over real HTTP.

The real clients (social-core for sign-in, google-api-python-client for the
APIs) are aimed here through the settings' endpoint overrides. Each area of
Google is a small route table; faults can be injected per path prefix.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse


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


@dataclass
class Response:
    status: int = 200
    body: bytes | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    prefix: str
    status: int
    remaining: int
    delay: float = 0.0


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
        self.tokens: dict[str, dict[str, Any]] = {}
        self._add_oauth_routes()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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
        """The next `times` requests under `prefix` answer `status` (after `delay` s)."""
        with self.lock:
            self.faults.append(Fault(prefix, status, times, delay))

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(prefix))

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
            target = req.arg("redirect_uri") or ""
            params = urlencode({"code": code, "state": req.arg("state", "")})
            return Response(302, headers={"Location": f"{target}?{params}"})

        def token(req: Request) -> Response:
            form = req.form()
            identity = self.codes.pop(form.get("code", ""), None)
            if identity is None:
                return Response(400, {"error": "invalid_grant"})
            access = secrets.token_urlsafe(16)
            self.tokens[access] = identity
            return Response(200, {"access_token": access, "token_type": "Bearer",
                                  "expires_in": 3599, "scope": "openid email profile"})

        def userinfo(req: Request) -> Response:
            access = req.headers.get("Authorization", "").removeprefix("Bearer ")
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
            return Response(fault.status, {"error": {"code": fault.status,
                                                     "message": "injected fault"}})
        for method, pattern, handler in self.routes:
            match = pattern.match(req.path)
            if method == req.method and match:
                return handler(req, **match.groupdict())
        return Response(404, {"error": {"code": 404, "message": f"no fake for {req.path}"}})

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
                    resp.headers.setdefault("Content-Type", "application/json")
                self.send_response(resp.status)
                for key, value in resp.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        return Handler
