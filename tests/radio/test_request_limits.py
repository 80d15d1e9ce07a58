"""Bodies are refused before they are read: on the real HTTP stack (uvicorn), over raw sockets.

The client streams the body while watching for an answer, and counts what it
managed to send before the answer came. Without the early refusal Django's ASGI
handler reads every byte first, so the whole body would be sent.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass

import pytest
from rest_framework.authtoken.models import Token

from radio.models import Notification, Role
from tests.asgi_server import uvicorn_server

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


@dataclass
class Outcome:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client had sent when the answer arrived


def _read_answer(sock: socket.socket, data: bytes, deadline: float) -> bytes:
    """Read until the whole response (head + Content-Length body) is in."""
    while time.monotonic() < deadline:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                           if line.lower().startswith(b"content-length:")), 0)
            if len(rest) >= length:
                return data
        ready, _, _ = select.select([sock], [], [], 0.5)
        if ready:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                return data
            if not piece:
                return data
            data += piece
    return data


def stream(port: int, method: str, path: str, size: int, headers: dict[str, str] | None = None,
           chunked: bool = False, timeout: float = 60) -> Outcome:
    """Send a `size`-byte body in pieces, stopping as soon as the server answers."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock = socket.create_connection(("127.0.0.1", port))
    # A small send buffer keeps what the kernel holds for us small, so `sent` is close
    # to what the server could have read.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sock.setblocking(False)
    piece = b"x" * (64 * 1024)
    queued, sent, pending, data = 0, 0, b"", b""  # body bytes framed / written, unwritten bytes
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not pending and queued < size:
                chunk = piece[: size - queued]
                queued += len(chunk)
                pending = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
                if chunked and queued >= size:
                    pending += b"0\r\n\r\n"
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 1.0)
            if readable:
                data = _read_answer(sock, data, deadline)
                break
            if writable:
                try:
                    written = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    data = _read_answer(sock, data, deadline)
                    break
                pending = pending[written:]
                sent += written  # chunk framing counts too: a few bytes per 64 KB
    finally:
        sock.close()
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1 "), f"no answer (sent {sent} bytes): {data[:200]!r}"
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return Outcome(int(lines[0].split()[1]), fields, body, sent)


@pytest.fixture
def server(process_env):
    env = dict(process_env, LIBRARY_MAX_UPLOAD_MB="1", REQUEST_MAX_BODY_KB="256")
    with uvicorn_server(env) as port:
        yield port


@pytest.fixture
def editor_token(station, make_user) -> str:
    return Token.objects.create(user=make_user(Role.EDITOR, station)).key


def test_an_anonymous_100_mb_post_is_refused_401_before_its_body_is_sent(server, station):
    outcome = stream(server, "POST", f"/api/v1/stations/{station.slug}/queue", 100 * MB,
                     {"Content-Type": "application/json"})
    assert outcome.status == 401
    assert json.loads(outcome.body)["detail"] == "Authentication credentials were not provided."
    assert outcome.headers["www-authenticate"] == "Token"
    assert outcome.sent < 10 * MB, f"{outcome.sent} bytes were sent before the 401"


def test_an_anonymous_chunked_post_to_the_api_is_refused_401_at_once(server, station):
    outcome = stream(server, "POST", f"/api/v1/stations/{station.slug}/queue", 100 * MB,
                     {"Content-Type": "application/json"}, chunked=True)
    assert outcome.status == 401
    assert outcome.sent < 10 * MB


def test_an_oversized_upload_is_refused_413_before_its_body_is_sent(server, station, editor_token):
    outcome = stream(server, "POST", f"/api/v1/stations/{station.slug}/tracks", 20 * MB,
                     {"Authorization": f"Token {editor_token}",
                      "Content-Type": "multipart/form-data; boundary=xyz"})
    assert outcome.status == 413
    assert "larger than the limit of 1.1" in json.loads(outcome.body)["detail"]
    assert outcome.sent < 5 * MB, f"{outcome.sent} bytes were sent before the 413"


def test_an_oversized_json_body_is_refused_413_even_when_signed_in(server, station, editor_token):
    outcome = stream(server, "POST", f"/api/v1/stations/{station.slug}/notifications", 100 * MB,
                     {"Authorization": f"Token {editor_token}", "Content-Type": "application/json"})
    assert outcome.status == 413
    assert outcome.sent < 10 * MB


def test_a_chunked_body_over_the_cap_is_cut_with_413(server, station, editor_token):
    outcome = stream(server, "POST", f"/api/v1/stations/{station.slug}/notifications", 100 * MB,
                     {"Authorization": f"Token {editor_token}", "Content-Type": "application/json"},
                     chunked=True)
    assert outcome.status == 413
    assert "larger than the limit of 256" in json.loads(outcome.body)["detail"]
    # The server counted past its 256 KB cap, then stopped reading.
    assert 256 * 1024 <= outcome.sent < 10 * MB
    assert not Notification.objects.exists()


def test_sign_in_pages_take_bodies_without_credentials_but_not_oversized_ones(server):
    token = stream(server, "POST", "/api/v1/auth/token", 30,
                   {"Content-Type": "application/x-www-form-urlencoded"})
    assert token.status == 400  # read and judged by Django: no username
    login = stream(server, "POST", "/login/", 100 * MB,
                   {"Content-Type": "application/x-www-form-urlencoded"})
    assert login.status == 413 and login.sent < 10 * MB


def test_requests_within_the_limits_still_work(server, station, editor_token):
    body = json.dumps({"message": "Traffic report moved to 8:05"}).encode()
    sock = socket.create_connection(("127.0.0.1", server))
    sock.sendall(f"POST /api/v1/stations/{station.slug}/notifications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: Token {editor_token}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    answer = b""
    while piece := sock.recv(65536):
        answer += piece
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert Notification.objects.get().message == "Traffic report moved to 8:05"
