"""Icecast output: what the paced sink plays out, encoded to MP3 and sent over one kept source connection.

The stream carries exactly what the station's output plays, at the instant it plays: gains,
fades, volume and timed starts are applied before the encoder (playback/output.py), so they are
heard on the stream as they are locally. VLC's own `#transcode:std{access=shout}` chain is not
used: its audio never passes through the equalizer or the sink, so fades and volume did not
reach the stream.

Two threads keep the broadcast apart from the network:
- the sink's play-out thread calls `feed()` (encode, ~1 % of a core at 128 kbit/s, FACTS.md) and
  `idle()` (silence while nothing plays, so listeners stay connected); neither ever blocks on I/O;
- the sender thread owns the socket: it connects (Icecast 2.4's `PUT /mount`, Basic auth,
  `Expect: 100-continue`; the legacy `SOURCE` method for older servers), sends, and on any fault
  (refused, reset, a send that times out) closes and reconnects with backoff;
- a watch thread asks the server for its status page every `PROBE_INTERVAL`: a server that stops
  answering without closing (hung, frozen) is noticed there, since a source connection gets no
  replies and the kernel buffers minutes of stream before a send would block (measured: Icecast's
  receive buffer had taken 474 KB, 30 s of stream, and was still growing). The watch then shuts
  the source connection, and the sender reconnects.
What was encoded while the sender could not send is dropped, keeping at most `BACKLOG_SECONDS`, so a
reconnected stream is live, not minutes behind.
"""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import unquote

import lameenc

logger = logging.getLogger(__name__)

RATE = 44100
CHANNELS = 2
FRAME_BYTES = 2 * CHANNELS
SEND_TIMEOUT = 5.0  # s: a server that takes no data for this long is treated as gone
CONNECT_TIMEOUT = 5.0
SEND_BUFFER = 32 * 1024  # bytes: 2 s at 128 kbit/s
BACKLOG_SECONDS = 2.0
BACKOFF = (1.0, 2.0, 5.0, 10.0)  # s between attempts: a station wants its stream back soon
SILENCE_CHUNK_US = 100_000
PROBE_INTERVAL = 5.0
PROBE_TIMEOUT = 5.0
USER_AGENT = "OnAir"


@dataclass(frozen=True)
class SourceUrl:
    user: str
    password: str
    host: str
    port: int
    mount: str

    @classmethod
    def parse(cls, url: str) -> SourceUrl:
        """`source:PASSWORD@HOST:PORT/MOUNT` (the form the station's settings build)."""
        if "://" in url:
            url = url.split("://", 1)[1]
        credentials, _, address = url.rpartition("@")
        user, _, password = credentials.partition(":")
        hostport, _, mount = address.partition("/")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit() or not mount:
            raise ValueError(f"not an Icecast source address (source:PASSWORD@HOST:PORT/MOUNT): {url!r}")
        return cls(unquote(user or "source"), unquote(password), host, int(port), "/" + mount)


class IcecastOutput:
    """Feed it PCM (S16 native, 44.1 kHz stereo) as it is played out; it keeps the stream going."""

    def __init__(self, url: str, *, bitrate: int = 128, name: str = "OnAir", method: str = "PUT") -> None:
        self.source = SourceUrl.parse(url)
        self.bitrate = bitrate
        self.name = name
        self.method = method
        self.encoder = self._encoder()
        self.cursor_us: int | None = None  # where the stream's timeline has been fed up to (libvlc clock)
        self.backlog: deque[bytes] = deque()
        self.backlog_bytes = 0
        self.backlog_limit = int(BACKLOG_SECONDS * bitrate * 1000 / 8)
        self.cond = threading.Condition()
        self.closing = False
        self.connected = False
        self.last_error = ""
        self.bytes_sent = 0
        self.dropped_bytes = 0
        self.connects = 0
        self.down_since: float | None = time.time()  # wall clock; None while connected
        self.sock: socket.socket | None = None
        self.thread = threading.Thread(target=self._send_loop, name="icecast", daemon=True)
        self.thread.start()
        self.watch = threading.Thread(target=self._watch_loop, name="icecast-watch", daemon=True)
        self.watch.start()

    def _encoder(self) -> lameenc.Encoder:
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(self.bitrate)
        encoder.set_in_sample_rate(RATE)
        encoder.set_channels(CHANNELS)
        encoder.set_quality(2)
        return encoder

    # --- the play-out thread ----------------------------------------------------------------

    def feed(self, at_us: int, pcm: bytes) -> None:
        """`pcm` is heard from `at_us` (libvlc clock): a gap since the last feed goes out as silence."""
        if self.cursor_us is not None and at_us - self.cursor_us > 2_000:
            self._silence(min(at_us - self.cursor_us, 10_000_000))
        self._encode(pcm)
        self.cursor_us = at_us + len(pcm) // FRAME_BYTES * 1_000_000 // RATE

    def idle(self, now_us: int) -> None:
        """Nothing is being played out: keep the stream's clock with silence up to `now_us`."""
        if self.cursor_us is None:
            self.cursor_us = now_us
            return
        while now_us - self.cursor_us >= SILENCE_CHUNK_US:
            self._silence(SILENCE_CHUNK_US)
        if now_us - self.cursor_us > 10_000_000:  # the clock jumped: do not encode minutes of silence
            self.cursor_us = now_us

    def _silence(self, duration_us: int) -> None:
        frames = duration_us * RATE // 1_000_000
        self._encode(bytes(frames * FRAME_BYTES))
        self.cursor_us = (self.cursor_us or 0) + frames * 1_000_000 // RATE

    def _encode(self, pcm: bytes) -> None:
        if not pcm:
            return
        mp3 = bytes(self.encoder.encode(pcm))
        if not mp3:
            return
        with self.cond:
            self.backlog.append(mp3)
            self.backlog_bytes += len(mp3)
            while self.backlog_bytes > self.backlog_limit and len(self.backlog) > 1:
                dropped = self.backlog.popleft()
                self.backlog_bytes -= len(dropped)
                self.dropped_bytes += len(dropped)
            self.cond.notify()

    # --- the sender thread ------------------------------------------------------------------

    def _request(self) -> bytes:
        auth = base64.b64encode(f"{self.source.user}:{self.source.password}".encode()).decode()
        lines = [f"{self.method} {self.source.mount} HTTP/1.1" if self.method == "PUT"
                 else f"SOURCE {self.source.mount} ICE/1.0",
                 f"Host: {self.source.host}:{self.source.port}",
                 f"Authorization: Basic {auth}", f"User-Agent: {USER_AGENT}",
                 "Content-Type: audio/mpeg", f"Ice-Name: {self.name}", "Ice-Public: 0",
                 f"Ice-Audio-Info: ice-bitrate={self.bitrate};ice-channels=2;ice-samplerate={RATE}"]
        if self.method == "PUT":
            lines.append("Expect: 100-continue")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.source.host, self.source.port), timeout=CONNECT_TIMEOUT)
        try:
            # A small send buffer: a server that stops reading is noticed in seconds, not minutes.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            sock.settimeout(SEND_TIMEOUT)
            sock.sendall(self._request())
            answer = b""
            while b"\r\n\r\n" not in answer and len(answer) < 8192:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                answer += chunk
            status = answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            parts = status.split()
            code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            if code not in (100, 200):
                raise ConnectionError(f"Icecast refused the source: {status or 'no answer'}")
            return sock
        except BaseException:
            sock.close()
            raise

    def _send_loop(self) -> None:
        attempt = 0
        while not self.closing:
            try:
                sock = self._connect()
            except (OSError, ConnectionError) as exc:
                self._fault(f"cannot connect to Icecast {self.source.host}:{self.source.port}"
                            f"{self.source.mount}: {exc}")
                self._wait(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            with self.cond:
                self.backlog.clear()  # what was encoded while away is stale: the stream resumes live
                self.backlog_bytes = 0
            self.sock = sock
            self.connected, self.connects, self.down_since = True, self.connects + 1, None
            logger.info("Icecast source connected: %s:%s%s", self.source.host, self.source.port,
                        self.source.mount)
            attempt = 0
            try:
                self._pump(sock)
            except OSError as exc:
                self._fault(f"Icecast connection lost: {exc}")
            finally:
                self.connected, self.down_since = False, time.time()
                self.sock = None
                sock.close()
            if not self.closing:
                self._wait(BACKOFF[0])

    def _pump(self, sock: socket.socket) -> None:
        while not self.closing:
            with self.cond:
                while not self.backlog and not self.closing:
                    self.cond.wait(0.5)
                chunks = list(self.backlog)
                self.backlog.clear()
                self.backlog_bytes = 0
            if chunks:
                data = b"".join(chunks)
                sock.sendall(data)  # SEND_TIMEOUT: a server that stops answering raises here
                self.bytes_sent += len(data)

    def _probe(self) -> None:
        """One status request on its own connection; raises unless the server answers in time."""
        with socket.create_connection((self.source.host, self.source.port), timeout=PROBE_TIMEOUT) as probe:
            probe.settimeout(PROBE_TIMEOUT)
            probe.sendall(f"GET /status-json.xsl HTTP/1.0\r\nHost: {self.source.host}\r\n"
                          f"User-Agent: {USER_AGENT}\r\n\r\n".encode())
            if not probe.recv(64).startswith(b"HTTP/"):
                raise ConnectionError("no HTTP answer")

    def _watch_loop(self) -> None:
        while not self.closing:
            self._wait(PROBE_INTERVAL)
            sock = self.sock
            if sock is None or self.closing:
                continue
            try:
                self._probe()
            except (OSError, ConnectionError) as exc:
                self._fault(f"Icecast connection lost: the server does not answer ({exc})")
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # the sender's send fails; it reconnects
                except OSError:
                    pass

    def _fault(self, message: str) -> None:
        if message != self.last_error:
            logger.warning("%s (the broadcast goes on; the stream reconnects)", message)
        self.last_error = message

    def _wait(self, seconds: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.closing, timeout=seconds)

    def state(self) -> dict:
        return {"connected": self.connected, "down_since": self.down_since, "connects": self.connects,
                "bytes_sent": self.bytes_sent,
                "dropped_bytes": self.dropped_bytes, "last_error": self.last_error}

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # Daemon threads: a connect or probe stuck on a hung server must not hold up the worker's stop.
        self.thread.join(1.0)
        self.watch.join(0.5)
