"""The playback worker as a real process: Redis outages and live status over the socket."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.test import Client

from library.models import Track
from library.services import track_analyse, track_import_file
from playback import services
from playback.models import PlayerCommand, PlayLog
from radio.models import Role
from settings.asgi import application
from tests.library.audio import make_tone
from tests.playback.test_playback_worker import wait_for
from tests.servers import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tone_track(station, tmp_path):
    station.queue_min_depth = 0
    station.save()

    def make(title: str, seconds: float = 1.0) -> Track:
        path = make_tone(tmp_path / f"{title}.mp3", seconds=seconds, title=title)
        track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                  original_name=f"{title}.mp3")
        return track_analyse(track=track)

    return make


def test_music_goes_on_while_redis_is_down_and_status_catches_up(station, tone_track, spawn,
                                                                 process_env):
    private_redis = RedisServer()
    process_env["REDIS_URL"] = private_redis.start()
    try:
        for name in ("A", "B", "C", "D"):
            services.queue_append(station=station, track=tone_track(name))
        worker = spawn("playback_worker", "--station", station.slug, "--output", "dummy")
        wait_for(lambda: PlayLog.objects.filter(station=station).exists())
        private_redis.process.kill()  # Redis dies mid-broadcast
        private_redis.process.wait()
        wait_for(lambda: PlayLog.objects.filter(station=station).count() == 4)
        assert worker.poll() is None, worker.read_err()
        rows = list(PlayLog.objects.filter(station=station).order_by("started_at"))
        assert [r.title for r in rows] == ["A", "B", "C", "D"]
        assert {r.outcome for r in rows} == {PlayLog.Outcome.COMPLETED}

        # Redis returns on the same port: the next item's status reaches the station group.
        private_redis.start()
        layer = RedisChannelLayer(hosts=[process_env["REDIS_URL"]])
        last = tone_track("E")

        async def listen() -> dict:
            channel = await layer.new_channel()
            await layer.group_add(f"station.{station.slug}", channel)
            await asyncio.sleep(0)
            await database_sync_to_async(services.queue_append)(station=station, track=last)
            while True:
                message = await asyncio.wait_for(layer.receive(channel), timeout=15)
                current = message["data"].get("current")
                if message["type"] == "playback_status" and current and current["title"] == "E":
                    return message["data"]

        status = async_to_sync(listen)()
        assert status["is_playing"] and status["database"] == "up"
        assert worker.poll() is None
    finally:
        private_redis.stop()


async def test_a_socket_client_sees_the_new_status_after_a_command(station, tone_track, spawn, make_user):
    track = await database_sync_to_async(tone_track)("Long song", 6.0)
    editor = await database_sync_to_async(make_user)(Role.EDITOR, station)

    @database_sync_to_async
    def cookie() -> bytes:
        client = Client()
        client.force_login(editor)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", await cookie())]
    communicator = WebsocketCommunicator(application, f"/ws/stations/{station.slug}/", headers=headers)
    assert (await communicator.connect(timeout=5))[0]
    await communicator.receive_json_from(timeout=5)  # snapshot
    await database_sync_to_async(spawn)("playback_worker", "--station", station.slug, "--output", "dummy")
    await database_sync_to_async(services.queue_append)(station=station, track=track)

    async def until(predicate, timeout=20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = await communicator.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
            if message["type"] == "playback_status" and predicate(message["data"]):
                return message["data"]

    playing = await until(lambda d: d.get("current") and d["current"]["title"] == "Long song")
    assert playing["is_playing"] and not playing["paused"]
    sent = time.monotonic()
    await database_sync_to_async(services.command_issue)(station=station, action=PlayerCommand.Action.PAUSE,
                                                         actor=editor)
    paused = await until(lambda d: d.get("paused"), timeout=5)
    latency = time.monotonic() - sent
    assert paused["current"]["title"] == "Long song"
    assert latency < 2.0  # nudged over the channel layer, not waiting for a poll
    await communicator.disconnect()


def test_music_goes_on_while_the_database_is_away_and_the_log_catches_up(station, tone_track, spawn,
                                                                          process_env):
    from tests.servers import TcpProxy

    # The worker reaches PostgreSQL through a proxy we can cut, like a network outage.
    head, _, name = process_env["DATABASE_URL"].rpartition("/")
    host_port = head.rsplit("@", 1)[1]
    proxy = TcpProxy(int(host_port.rsplit(":", 1)[1]))
    process_env["DATABASE_URL"] = f"{head.rsplit(':', 1)[0]}:{proxy.port}/{name}"
    try:
        names = ["A", "B", "C", "D", "E"]
        for title in names:
            services.queue_append(station=station, track=tone_track(title))
        worker = spawn("playback_worker", "--station", station.slug, "--output", "dummy")
        wait_for(lambda: PlayLog.objects.filter(station=station).exists())
        proxy.cut()
        cut_at = time.monotonic()
        time.sleep(3.0)  # about three items play while the database is away
        assert worker.poll() is None, worker.read_err()
        during = PlayLog.objects.filter(station=station).count()
        proxy.restore()
        rows = wait_for(lambda: (r := list(PlayLog.objects.filter(station=station).order_by("started_at")))
                        and len(r) == 5 and r)
        assert during <= 2  # nothing could be written while cut
        assert [r.title for r in rows] == names
        assert {r.outcome for r in rows} == {PlayLog.Outcome.COMPLETED}
        # The late rows carry the times the items really aired, back to back.
        for earlier, later in zip(rows, rows[1:], strict=False):
            assert abs((later.started_at - earlier.ended_at).total_seconds()) < 0.5
        assert time.monotonic() - cut_at < 20
        assert not services.queue_items(station).exists()
    finally:
        proxy.close()
