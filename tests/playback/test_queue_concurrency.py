"""Concurrent operators on one station's queue, through uvicorn (the production ASGI server).

Every request runs on its own thread with its own PostgreSQL connection, as in production.
Positions must stay 0..n-1 (unique and dense) whatever interleaving happens, a change to an
item that is gone answers 404 (never 500), and the playback worker's own queue writes and
auto-DJ top-ups take the same lock.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.authtoken.models import Token

from playback import services
from playback.models import PlayerCommand, QueueItem
from radio.models import Role, Station
from tests.asgi_server import uvicorn_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server_url(process_env):
    with uvicorn_server(process_env) as port:
        yield f"http://127.0.0.1:{port}"


class Api:
    def __init__(self, base: str, slug: str, token: str) -> None:
        self.base = f"{base}/api/v1/stations/{slug}/queue"
        self.player = f"{base}/api/v1/stations/{slug}/player/"
        self.token = token

    def call(self, method: str, path: str = "", body: dict | None = None, *,
             base: str | None = None) -> tuple[int, dict | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request((base or self.base) + path, data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, {"body": raw[:300].decode(errors="replace")}


@pytest.fixture
def api(server_url, station, make_user) -> Api:
    editor = make_user(Role.EDITOR, station)
    return Api(server_url, station.slug, Token.objects.create(user=editor).key)


def _positions(station: Station) -> list[int]:
    items = QueueItem.objects.filter(station=station).order_by("position")
    return list(items.values_list("position", flat=True))


def _assert_dense(station: Station) -> None:
    positions = _positions(station)
    duplicates = {p: n for p, n in Counter(positions).items() if n > 1}
    assert not duplicates, f"duplicate positions: {duplicates}"
    assert positions == list(range(len(positions)))
    on_air = QueueItem.objects.filter(station=station, status=QueueItem.Status.PLAYING)
    assert all(item.position == 0 for item in on_air), "the item on air is listed first"


def test_concurrent_appends_moves_and_removes_keep_positions_dense(api, station, make_playable):
    tracks = [make_playable(f"Song {i}", f"Artist {i}").pk for i in range(6)]
    appended: list[int] = []
    removed: list[int] = []
    commands: list[int] = []  # play-now: the item it queued is named in the command
    answers: list[tuple[str, int, dict | None]] = []
    guard = threading.Lock()
    start = threading.Barrier(10)

    def operator(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(12):
            with guard:
                known = list(appended)
            roll = rng.random()
            if roll < 0.1:  # play-now puts the track next, then asks the worker to cut to it
                status, body = api.call("POST", "play-now", {"track": rng.choice(tracks)}, base=api.player)
                with guard:
                    answers.append(("play-now", status, body))
                    if status == 202:
                        commands.append(body["command"])
            elif roll < 0.5 or not known:
                status, body = api.call("POST", "", {"track": rng.choice(tracks),
                                                     "at": rng.choice(["end", "end", "next"])})
                with guard:
                    answers.append(("append", status, body))
                    if status == 201:
                        appended.append(body["id"])
            elif roll < 0.8:
                status, body = api.call("PATCH", f"/{rng.choice(known)}", {"to_index": rng.randint(0, 8)})
                with guard:
                    answers.append(("move", status, body))
            else:
                victim = rng.choice(known)
                status, body = api.call("DELETE", f"/{victim}")
                with guard:
                    answers.append(("remove", status, body))
                    if status == 204:
                        removed.append(victim)

    threads = [threading.Thread(target=operator, args=(seed,)) for seed in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    appended += [PlayerCommand.objects.get(pk=pk).args["queue_item"] for pk in commands]

    expected = {"append": {201}, "play-now": {202}, "move": {200, 404}, "remove": {204, 404}}
    wrong = [(kind, status, body) for kind, status, body in answers if status not in expected[kind]]
    assert not wrong, wrong
    # Gone before the view found it ("No QueueItem matches…") or after (the service's reason).
    gone = [body["detail"] for kind, status, body in answers if status == 404]
    assert all("no longer in the queue" in detail or "QueueItem" in detail for detail in gone), gone
    assert Counter(removed) == Counter(set(removed)), "an item was removed twice"
    _assert_dense(station)
    left = set(QueueItem.objects.filter(station=station).values_list("pk", flat=True))
    assert left == set(appended) - set(removed), "every successful append is there unless removed"
    listing = api.call("GET")[1]
    assert [item["position"] for item in listing] == list(range(len(left)))


def test_move_of_an_item_removed_meanwhile_is_404(api, station, make_playable):
    """A DELETE and a PATCH of the same item both pass get_object(); the DELETE takes the
    queue first, so the PATCH finds the item gone: 404 with a reason, not 500."""
    items = [services.queue_append(station=station, track=make_playable(f"Song {i}")) for i in range(3)]
    victim = items[1]
    results: dict[str, tuple[int, dict | None]] = {}

    def waiting_for_locks() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot per transaction
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            return cursor.fetchone()[0]

    def wait_until(count: int) -> None:
        deadline = time.monotonic() + 15
        while waiting_for_locks() < count:
            assert time.monotonic() < deadline, "the request never reached the queue lock"
            time.sleep(0.02)

    remover = threading.Thread(target=lambda: results.update(remove=api.call("DELETE", f"/{victim.pk}")))
    mover = threading.Thread(target=lambda: results.update(
        move=api.call("PATCH", f"/{victim.pk}", {"to_index": 0})))
    with transaction.atomic():  # hold the station's queue, as a slow operator's change would
        services._queue_lock(station)
        remover.start()
        wait_until(1)
        mover.start()
        wait_until(2)
    remover.join(30)
    mover.join(30)

    assert results["remove"][0] == 204
    status, body = results["move"]
    assert status == 404, body
    assert "no longer in the queue" in body["detail"]
    assert api.call("DELETE", f"/{victim.pk}")[0] == 404  # a second removal: gone, not "done" again
    assert [item.pk for item in services.queue_items(station)] == [items[0].pk, items[2].pk]
    _assert_dense(station)


def test_worker_and_auto_dj_writes_take_the_queue_lock(station, make_playable):
    """Operators' appends, auto-DJ top-ups and the worker starting and finishing items, all at
    once on their own connections (the worker's run on its backstage thread like these)."""
    for i in range(8):
        make_playable(f"Auto {i}", f"Artist {i}")
    Station.objects.filter(pk=station.pk).update(queue_min_depth=4)
    station.refresh_from_db()
    manual = make_playable("Request", "Caller")
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run(job) -> None:
        try:
            start.wait()
            for _ in range(10):
                job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    def operator() -> None:
        services.queue_append(station=station, track=manual)
        services.queue_insert_next(station=station, track=manual)

    def worker() -> None:
        first = QueueItem.objects.filter(station=station, status=QueueItem.Status.QUEUED).order_by(
            "position").first()
        for playing in QueueItem.objects.filter(station=station, status=QueueItem.Status.PLAYING):
            services.queue_item_done(station=station, item_id=playing.pk)
        if first is not None:
            services.queue_item_started(station=station, item_id=first.pk)

    jobs = [operator, lambda: services.autodj_top_up(station=station), worker,
            lambda: services.autodj_top_up(station=station)]
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    _assert_dense(station)
    assert QueueItem.objects.filter(station=station, status=QueueItem.Status.PLAYING).count() <= 1


def test_the_on_air_thread_plays_on_while_the_queue_lock_is_held(station, make_playable):
    """The worker's queue writes wait for the lock on its backstage thread; the on-air thread
    never waits for them: items keep changing on time while an operator holds the queue."""
    import queue as queue_module

    from playback.engine import Engine, OutputConfig
    from playback.models import PlayLog
    from playback.worker import PlaybackWorker

    Station.objects.filter(pk=station.pk).update(queue_min_depth=0)
    station.refresh_from_db()
    for name in ("One", "Two", "Three"):
        services.queue_append(station=station, track=make_playable(name))
    events: queue_module.Queue = queue_module.Queue()
    engine = Engine(OutputConfig("dummy"), events)
    worker = PlaybackWorker(station, engine, events, owner="test:1:lock", threaded=True)
    held, release = threading.Event(), threading.Event()

    def hold_the_queue() -> None:
        try:
            with transaction.atomic():
                services._queue_lock(station)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_queue)
    try:
        worker.recover()
        deadline = time.monotonic() + 15
        while worker.on_air is None or worker.upcoming == []:
            assert time.monotonic() < deadline, "nothing went on air"
            worker.step(timeout=0.02)
        holder.start()
        assert held.wait(5)
        aired, since = [worker.on_air.entry.title], time.monotonic()
        while time.monotonic() - since < 3.5:
            worker.step(timeout=0.02)
            if worker.on_air is not None and worker.on_air.entry.title != aired[-1]:
                aired.append(worker.on_air.entry.title)
        assert aired[:3] == ["One", "Two", "Three"], aired  # then auto-DJ's pool, from memory
        assert worker.backstage.busy_since is not None, "the backstage thread was waiting for the lock"
        release.set()
        holder.join(10)
        deadline = time.monotonic() + 15
        while PlayLog.objects.filter(station=station).count() < 3 or QueueItem.objects.filter(
                station=station).exists():
            assert time.monotonic() < deadline, "the waiting writes were not made after the lock was freed"
            worker.step(timeout=0.05)
    finally:
        release.set()
        worker.close(deadline=time.monotonic() + 2)
        engine.release()
        raw = getattr(worker.backstage._wrapper, "connection", None)  # the finished thread's
        if raw is not None:
            raw.close()
    _assert_dense(station)


def test_the_migration_repairs_duplicate_positions_before_adding_the_constraint(station, make_playable):
    from django.db.migrations.executor import MigrationExecutor

    track = make_playable("Song")
    before, after = ("playback", "0002_playercommand_expired"), ("playback", "0003_queue_position_unique")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps.get_model("playback", "QueueItem")
    # As concurrent appends left them: duplicates, gaps, the item on air not first.
    made = [old.objects.create(station_id=station.pk, track_id=track.pk, position=position, status=status)
            for position, status in [(20, "queued"), (20, "queued"), (10, "queued"), (30, "playing"),
                                     (10, "queued")]]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([after])
    rows = list(QueueItem.objects.filter(station=station).order_by("position").values_list("pk", "position"))
    ids = [item.pk for item in made]
    assert rows == [(ids[3], 0), (ids[2], 1), (ids[4], 2), (ids[0], 3), (ids[1], 4)]
    with pytest.raises(IntegrityError), transaction.atomic():
        QueueItem.objects.filter(pk=ids[1]).update(position=0)
