"""The Icecast stream as a listener hears it: a real icecast2, the real worker (libvlc, the paced sink,
the lameenc encoder over one kept source connection), and a listener decoding the mount with ffmpeg.

Faults the way they happen to a stream: icecast2 frozen (SIGSTOP: connections stay open, nothing is
read) — the broadcast goes on, the stream comes back; icecast2 killed and restarted on its port."""

from __future__ import annotations

import queue
import subprocess
import threading
import time

import numpy as np
import pytest

from library.analysis import ffmpeg_binary
from playback import services
from playback.engine import Engine, OutputConfig
from playback.models import PlayerCommand
from playback.output import RATE
from playback.worker import FADE_MS, PlaybackWorker
from tests.playback.sound import label, loudness_of, rms_db, windows
from tests.servers import IcecastServer

pytestmark = pytest.mark.django_db
MOUNT = "test.mp3"


class Listener(threading.Thread):
    """ffmpeg decoding the mount to PCM (S16, 44.1 kHz stereo) as it arrives."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.pcm = bytearray()
        self.process: subprocess.Popen | None = None

    def run(self) -> None:
        self.process = subprocess.Popen(
            [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-reconnect", "0", "-i", self.url,
             "-f", "s16le", "-ac", "2", "-ar", str(RATE), "-"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        while chunk := self.process.stdout.read(16384):
            self.pcm += chunk

    def samples(self) -> np.ndarray:
        data = bytes(self.pcm)
        return np.frombuffer(data[:len(data) // 4 * 4], dtype=np.int16).reshape(-1, 2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.join(5)


@pytest.fixture
def icecast():
    server = IcecastServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker(start_worker, icecast):
    url = f"source:{icecast.password}@127.0.0.1:{icecast.port}/{MOUNT}"
    return start_worker(OutputConfig("icecast", icecast_url=url), owner="test:1:icecast")


def step_for(worker, seconds: float, until=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.step(timeout=0.02)
        if until is not None and until():
            return
    if until is not None:
        raise AssertionError("condition not met within the time limit")


def wait_for_mount(icecast, worker, seconds: float = 15.0) -> None:
    step_for(worker, seconds, until=lambda: MOUNT in icecast.mounts())


def test_the_stream_carries_normalised_loudness_fades_and_volume(station, icecast, worker, tone, tmp_path):
    wait_for_mount(icecast, worker)  # silence goes out before anything plays: listeners stay connected
    listener = Listener(icecast.listen_url(MOUNT))
    listener.start()
    step_for(worker, 1.0)
    tracks = [tone("Quiet", 4.0, freq=440.0, level_db=-28.0), tone("Loud", 4.0, freq=1000.0, level_db=-8.0),
              tone("Long", 8.0, freq=1500.0, level_db=-16.0), tone("Next", 6.0, freq=2000.0, level_db=-16.0)]
    for track in tracks:
        services.queue_append(station=station, track=track)
    worker.nudged = True
    step_for(worker, 20.0, until=lambda: worker.on_air is not None and worker.on_air.entry.title == "Long")
    step_for(worker, 2.0)
    services.command_issue(station=station, action=PlayerCommand.Action.SKIP)
    worker.nudged = True
    step_for(worker, 5.0, until=lambda: worker.on_air is not None and worker.on_air.entry.title == "Next")
    step_for(worker, 2.0)
    services.command_issue(station=station, action=PlayerCommand.Action.VOLUME, args={"volume": 50})
    worker.nudged = True
    step_for(worker, 3.0)
    step_for(worker, 2.0)  # the stream is ~0.5 s behind the output; then Icecast's own buffering
    listener.stop()

    freqs = (440.0, 1000.0, 1500.0, 2000.0)
    parts = windows(listener.samples(), 20.0)
    labels = [label(w, freqs) for w in parts]
    assert labels.count(440.0) > 150 and labels.count(2000.0) > 150, "the stream did not carry the items"
    for freq in (440.0, 1000.0):
        inner = [w for w, f in zip(parts, labels, strict=True) if f == freq][5:-5]
        measured = loudness_of(np.concatenate(inner), tmp_path / f"{freq:.0f}.wav")
        assert abs(measured - -16.0) <= 1.0, (freq, measured)  # the files are 20 LU apart
    # The skip: the long tone fades out over FADE_MS on the stream, then the next starts.
    first_next = labels.index(2000.0)
    long_levels = [rms_db(w) for w, f in zip(parts[:first_next], labels[:first_next], strict=True)
                   if f == 1500.0]
    full = float(np.median(long_levels[:50]))
    fading = [db for db in long_levels if db < full - 1.0]
    assert fading and fading[-1] < full - 15, "the skip was a cut on the stream, not a fade"
    assert FADE_MS * 0.5 <= 20 * len(fading) <= FADE_MS * 1.5, len(fading)
    assert 1500.0 not in labels[first_next:]
    # The volume: the next item drops by the volume's gain on the stream.
    nxt = [rms_db(w) for w, f in zip(parts, labels, strict=True) if f == 2000.0]
    assert float(np.median(nxt[:40])) == pytest.approx(full, abs=1.5)
    assert float(np.median(nxt[-40:])) == pytest.approx(full - 16.0, abs=1.5)
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in parts) < 32767


def test_a_frozen_icecast_never_stops_the_broadcast_and_the_stream_comes_back(station, icecast, worker, tone):
    for n in range(8):
        services.queue_append(station=station, track=tone(f"T{n}", 6.0, freq=440.0 + 110 * n, level_db=-16.0))
    wait_for_mount(icecast, worker)
    step_for(worker, 2.0)
    output = worker.engine.sink.outputs[0]
    assert output.connected and output.bytes_sent > 0
    heard_before = worker.engine.sink.frames_heard
    icecast.freeze()  # the server stops reading and answering; its sockets stay open
    frozen_at = time.monotonic()
    # The kernel buffers minutes of stream before a send would block: the watch's status request notices.
    step_for(worker, 15.0)
    heard = (worker.engine.sink.frames_heard - heard_before) / RATE
    elapsed = time.monotonic() - frozen_at
    assert heard >= elapsed - 0.5, f"{heard:.1f} s heard in {elapsed:.1f} s while Icecast was frozen"
    assert not output.connected and "Icecast" in output.last_error, output.state()  # noticed; reconnecting
    icecast.thaw()
    step_for(worker, 15.0, until=lambda: output.connected and MOUNT in icecast.mounts())
    assert output.connects >= 2
    listener = Listener(icecast.listen_url(MOUNT))
    listener.start()
    step_for(worker, 4.0)
    listener.stop()
    now_playing = worker.on_air.entry.title if worker.on_air else None
    heard_labels = {label(w, tuple(440.0 + 110 * n for n in range(8))) for w in windows(listener.samples())}
    assert now_playing is not None and 440.0 + 110 * int(now_playing[1:]) in heard_labels


def test_a_stream_without_its_server_shows_on_healthz_until_it_connects(station, tone):
    from radio.health import health_report
    from radio.services import lease_acquire

    station.queue_min_depth = 0
    station.save()
    server = IcecastServer()  # its port is chosen, the server not started yet
    events: queue.Queue = queue.Queue()
    engine = Engine(OutputConfig("icecast", icecast_url=f"source:{server.password}@127.0.0.1:{server.port}/"
                                                        f"{MOUNT}"), events)
    owner = "test:1:icecast-health"
    assert lease_acquire(key=f"playback:{station.slug}", owner=owner, stale_after=3600, station=station)
    worker = PlaybackWorker(station, engine, events, owner=owner)
    worker.recover()
    try:
        services.queue_append(station=station, track=tone("Long", 40.0, freq=440.0, level_db=-16.0))

        def playback_state() -> dict:
            return health_report()["checks"]["playback"][station.slug]

        step_for(worker, 25.0, until=lambda: not playback_state()["ok"])
        state = playback_state()
        assert "Icecast stream down since" in state["detail"] and "cannot connect" in state["detail"], state
        assert worker.on_air is not None  # on air all along: only the stream is missing
        server.start()
        step_for(worker, 40.0, until=lambda: playback_state()["ok"])  # the next attempt: within 10 s
        assert engine.stream_state()["connected"] and MOUNT in server.mounts()
    finally:
        engine.release()
        server.stop()
