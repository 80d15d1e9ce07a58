"""Live updates that scale: what each socket gets, and what it costs the web process.

The playback worker sends its status when it changes (and every STATUS_KEEPALIVE s), without
the queue; the queue goes out in `queue_update` when it changes; a message is encoded once
where it is made and every socket sends that text; access is checked again when a membership
changes (only that user's sockets) and otherwise on a jittered schedule, never in a burst.
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import statistics
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client

from library.models import Track
from library.services import track_analyse, track_import_file
from playback import consumers, services
from playback import worker as worker_module
from playback.engine import Engine, OutputConfig
from playback.models import PlayerCommand
from playback.worker import PlaybackWorker
from radio import notify
from radio.models import Membership, Role
from radio.notify import ChannelLoop, MessageType, station_group, station_notify_async
from settings.asgi import application
from tests.library.audio import make_tone

HEADERS = [(b"host", b"localhost"), (b"origin", b"http://localhost")]


@pytest.fixture
def tone_track(station, tmp_path):
    station.queue_min_depth = 0  # no auto-DJ: the queue holds what the test puts in it
    station.save()

    def make(title: str, seconds: float = 1.0) -> Track:
        path = make_tone(tmp_path / f"{title}.mp3", seconds=seconds, title=title)
        track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                  original_name=f"{title}.mp3")
        return track_analyse(track=track)

    return make


def _cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


class Socket:
    """A station socket whose every message is noted with its arrival time, as it comes.

    Reads the communicator's output queue itself: `receive_output` cancels the application
    when it times out, and these sockets must stay open while a test waits.
    """

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.messages: list[tuple[float, dict]] = []
        self.closed: dict | None = None
        self.task = asyncio.ensure_future(self._collect())

    async def _collect(self) -> None:
        while True:
            output = await self.communicator.output_queue.get()
            if output["type"] == "websocket.close":
                self.closed = output
                return
            if output["type"] == "websocket.send":
                self.messages.append((time.monotonic(), {**json.loads(output["text"]), "_text": output["text"],
                                                         "_bytes": len(output["text"].encode())}))

    def since(self, moment: float, type_: str | None = None) -> list[tuple[float, dict]]:
        return [(at, m) for at, m in self.messages if at >= moment and (type_ is None or m["type"] == type_)]

    async def close(self) -> None:
        self.task.cancel()
        await self.communicator.disconnect()


async def _open(slug: str, cookie: bytes) -> Socket:
    communicator = WebsocketCommunicator(application, f"/ws/stations/{slug}/",
                                         headers=[*HEADERS, (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return Socket(communicator)


async def _open_many(slug: str, cookie: bytes, count: int) -> list[Socket]:
    sockets: list[Socket] = []
    while len(sockets) < count:
        sockets += await asyncio.gather(*(_open(slug, cookie) for _ in range(min(20, count - len(sockets)))))
    return sockets


async def _close_all(sockets: list[Socket]) -> None:
    for start in range(0, len(sockets), 20):  # as they were opened: a bounded Redis pool
        await asyncio.gather(*(s.close() for s in sockets[start:start + 20]))


async def _until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the time limit")
        await asyncio.sleep(0.02)


def _arrivals(sockets: list[Socket], since: float, predicate) -> list[float]:
    """Per socket, when the first message matching `predicate` arrived after `since`."""
    found = []
    for socket in sockets:
        at = next((at for at, m in socket.since(since) if predicate(m)), None)
        if at is not None:
            found.append(at - since)
    return found


# --- 200 sockets and a real playback worker ----------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_200_sockets_of_a_playing_station_get_changes_at_once_and_no_steady_tick(
        station, tone_track, spawn, make_user):
    long_song = await database_sync_to_async(tone_track)("Long song", 40.0)
    waiting = await database_sync_to_async(tone_track)("Waiting", 5.0)
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    editor = await database_sync_to_async(make_user)(Role.EDITOR, station)
    cookie = await database_sync_to_async(_cookie)(viewer)
    sockets = await _open_many(station.slug, cookie, 200)
    try:
        await _until(lambda: all(s.messages for s in sockets), 20)
        snapshot = sockets[0].messages[0][1]
        assert snapshot["type"] == "playback_status" and "queue" in snapshot["data"]  # the full snapshot

        await database_sync_to_async(services.queue_append)(station=station, track=long_song)
        await database_sync_to_async(services.queue_append)(station=station, track=waiting)
        await database_sync_to_async(spawn)("playback_worker", "--station", station.slug, "--output", "dummy")

        def on_air(m: dict) -> bool:
            current = m["type"] == "playback_status" and m["data"].get("current")
            return bool(current) and current["title"] == "Long song"

        def queue_shows_it_playing(m: dict) -> bool:
            return m["type"] == "queue_update" and any(
                i["status"] == "playing" and i["track"]["title"] == "Long song" for i in m["data"]["queue"])

        await _until(lambda: len(_arrivals(sockets, 0, on_air)) == 200, 30)
        # The worker's own queue change (the item went on air) comes as a queue_update.
        await _until(lambda: len(_arrivals(sockets, 0, queue_shows_it_playing)) == 200, 15)

        # Idle-playing: nothing but (at most) a keepalive, and no status carries the queue.
        await asyncio.sleep(0.5)
        quiet_from = time.monotonic()
        await asyncio.sleep(6.0)
        per_socket = [len(s.since(quiet_from)) for s in sockets]
        assert max(per_socket) <= 1, Counter(per_socket)  # was 6 (one status a second)
        worker_statuses = [m for s in sockets for _, m in s.messages[1:] if m["type"] == "playback_status"]
        assert worker_statuses and all("queue" not in m["data"] for m in worker_statuses)
        assert max(m["_bytes"] for m in worker_statuses) < 1000  # was ~4.4 KB with the queue
        assert all(m["data"]["server_time"] for m in worker_statuses)

        # A change reaches every socket at once.
        sent = time.monotonic()
        await database_sync_to_async(services.command_issue)(station=station, action=PlayerCommand.Action.PAUSE,
                                                             actor=editor)
        await _until(lambda: len(_arrivals(sockets, sent, lambda m: m["type"] == "playback_status"
                                            and m["data"]["paused"])) == 200, 10)
        latencies = sorted(_arrivals(sockets, sent, lambda m: m["type"] == "playback_status"
                                     and m["data"]["paused"]))
        p95 = latencies[int(0.95 * len(latencies)) - 1]
        print(f"pause → 200 sockets: p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
        assert p95 < 3.0  # nudge + worker + fan-out; far less on an idle machine

        # A queue change is a queue_update to every socket; statuses still carry no queue.
        sent = time.monotonic()
        third = await database_sync_to_async(tone_track)("Third", 1.0)
        await database_sync_to_async(services.queue_append)(station=station, track=third)
        await _until(lambda: len(_arrivals(sockets, sent, lambda m: m["type"] == "queue_update" and any(
            i["track"]["title"] == "Third" for i in m["data"]["queue"]))) == 200, 10)
        assert all("queue" not in m["data"] for s in sockets for _, m in s.since(sent, "playback_status"))
    finally:
        await _close_all(sockets)


# --- the worker's status: on change, else a keepalive ----------------------------------------

@pytest.fixture
def worker(station):
    events: queue.Queue = queue.Queue()
    engine = Engine(OutputConfig("dummy"), events)
    player = PlaybackWorker(station, engine, events, owner="test:1:x")
    player.recover()
    yield player
    engine.release()


@pytest.fixture
def group_messages(station):
    """What the station group receives: a list that fills as messages arrive, read on one
    long-lived loop (FACTS.md: never async_to_sync(layer.receive) in a loop)."""
    loop = ChannelLoop(name="test-listener")
    seen: list[dict] = []

    async def join() -> str:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(station_group(station.slug), channel)
        return channel

    loop.listen(asyncio.run_coroutine_threadsafe(join(), loop.loop).result(5), seen.append)
    yield seen
    loop.close()


def _statuses(seen: list[dict], since: int = 0) -> list[dict]:
    time.sleep(0.3)  # what is on its way
    return [m for m in seen[since:] if m["type"] == "playback_status"]


def _run(worker: PlaybackWorker, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.step(timeout=0.02)


@pytest.mark.django_db
def test_a_playing_worker_sends_its_status_on_changes_only(station, tone_track, worker, group_messages):
    services.queue_append(station=station, track=tone_track("Long", 10.0))
    worker.nudged = True
    _run(worker, 3.0)
    statuses = _statuses(group_messages)
    assert len(statuses) == 1  # the start; was one a second
    status = statuses[0]["data"]
    assert status["current"]["title"] == "Long" and "queue" not in status
    assert json.loads(statuses[0]["text"]) == {"type": "playback_status", "data": status}  # encoded once, here

    count = len(group_messages)
    services.command_issue(station=station, action=PlayerCommand.Action.PAUSE)
    worker.nudged = True
    _run(worker, 1.0)
    statuses = _statuses(group_messages, count)
    assert [s["data"]["paused"] for s in statuses] == [True]


@pytest.mark.django_db
def test_without_changes_the_status_goes_out_as_a_keepalive(station, tone_track, worker, monkeypatch,
                                                           group_messages):
    monkeypatch.setattr(worker_module, "STATUS_KEEPALIVE", 0.5)
    services.queue_append(station=station, track=tone_track("Long", 10.0))
    worker.nudged = True
    _run(worker, 2.2)
    assert 4 <= len(_statuses(group_messages)) <= 6  # the start, then one every 0.5 s


# --- one encoding per message ---------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_a_message_is_encoded_once_for_every_socket(station, make_user, monkeypatch):
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    sockets = await _open_many(station.slug, await database_sync_to_async(_cookie)(viewer), 50)
    try:
        await _until(lambda: all(s.messages for s in sockets), 10)
        encoded = []
        real = notify.message_text
        monkeypatch.setattr(notify, "message_text", lambda *a: encoded.append(a) or real(*a))
        texts = []
        counted = SimpleNamespace(dumps=lambda *a, **k: texts.append(a) or json.dumps(*a, **k))
        monkeypatch.setattr(consumers, "json", counted)
        start = time.monotonic()
        assert await station_notify_async(station.slug, MessageType.NOTIFICATION, {"message": "Newsflash"})
        await _until(lambda: all(s.since(start) for s in sockets), 10)
        assert len(encoded) == 1 and not texts  # one json.dumps in the sender, none per socket
        # Each socket sent the sender's text as it is (compact separators: not re-encoded).
        assert {s.since(start)[0][1]["_text"] for s in sockets} == {
            '{"type":"notification","data":{"message":"Newsflash"}}'}

        # A sender that did not encode (no `text`): encoded once in this process, not per socket.
        start = time.monotonic()
        await get_channel_layer().group_send(station_group(station.slug),
                                             {"type": "notification", "data": {"message": "Old sender"}})
        await _until(lambda: all(s.since(start) for s in sockets), 10)
        assert len(texts) == 1
        assert all(s.since(start)[0][1]["data"] == {"message": "Old sender"} for s in sockets)
    finally:
        await _close_all(sockets)


# --- access rechecks: spread out, and at once when a membership changes ----------------------

def test_access_rechecks_are_spread_over_the_period_never_in_a_burst():
    rng = random.Random(9)
    period = 120.0
    first = [consumers.recheck_delay(True, period, rng) for _ in range(1000)]
    later = [consumers.recheck_delay(False, period, rng) for _ in range(1000)]
    assert all(0 <= d < period for d in first)
    assert all(0.5 * period <= d <= 1.5 * period for d in later)
    # 1,000 sockets opened at once (a web restart): their first checks fall in every part of the
    # period, never more than a few in the same second (the old rule: all 1,000 at 30 s).
    per_second = Counter(int(d) for d in first)
    assert len(per_second) > 0.9 * period and max(per_second.values()) <= 25
    # And they drift apart: the second round is no more bunched than the first.
    second = Counter(int(a + b) for a, b in zip(first, later, strict=True))
    assert max(second.values()) <= 25


@pytest.mark.django_db(transaction=True)
async def test_a_removed_membership_closes_that_users_sockets_with_4403_at_once(station, make_user):
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    other = await database_sync_to_async(make_user)(Role.VIEWER, station)
    mine = await _open(station.slug, await database_sync_to_async(_cookie)(viewer))
    theirs = await _open(station.slug, await database_sync_to_async(_cookie)(other))
    try:
        await _until(lambda: mine.messages and theirs.messages, 10)
        removed = time.monotonic()
        await database_sync_to_async(lambda: Membership.objects.filter(user=viewer).delete())()
        await _until(lambda: mine.closed is not None, 3)
        assert mine.closed["code"] == 4403 and time.monotonic() - removed < 3
        start = time.monotonic()
        assert await station_notify_async(station.slug, MessageType.NOTIFICATION, {"message": "still here"})
        await _until(lambda: theirs.since(start), 5)
        assert theirs.closed is None  # only the user whose access changed was checked
    finally:
        await mine.close()
        await theirs.close()


@pytest.mark.django_db(transaction=True)
async def test_a_deactivated_account_is_closed_with_4403_at_once(station, make_user):
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    socket = await _open(station.slug, await database_sync_to_async(_cookie)(viewer))
    try:
        await _until(lambda: socket.messages, 10)

        def deactivate() -> None:
            viewer.is_active = False
            viewer.save()

        await database_sync_to_async(deactivate)()
        await _until(lambda: socket.closed is not None, 3)
        assert socket.closed["code"] == 4403
    finally:
        await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_change_no_signal_reports_is_caught_by_the_periodic_recheck(station, make_user, monkeypatch):
    monkeypatch.setattr(consumers, "MEMBERSHIP_RECHECK", 0.5)
    viewer = await database_sync_to_async(make_user)(Role.VIEWER, station)
    socket = await _open(station.slug, await database_sync_to_async(_cookie)(viewer))
    try:
        await _until(lambda: socket.messages, 10)

        def delete_behind_the_signals() -> None:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {Membership._meta.db_table} WHERE user_id = %s", [viewer.pk])

        await database_sync_to_async(delete_behind_the_signals)()
        await _until(lambda: socket.closed is not None, 5)
        assert socket.closed["code"] == 4403
    finally:
        await socket.close()
