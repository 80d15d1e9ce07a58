"""The playback worker's steps with real libvlc (`dummy` output) and generated audio."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest

from library import storage
from library.models import Track
from library.services import track_analyse, track_import_file
from playback import services
from playback.engine import Engine, OutputConfig
from playback.models import EmergencyTrack, PlayerCommand, PlayerState, PlayLog, QueueItem, Reason
from playback.worker import PlaybackWorker
from radio.models import Notification, Role
from tests.library.audio import make_tone

pytestmark = pytest.mark.django_db


@pytest.fixture
def tone_track(station, tmp_path):
    station.queue_min_depth = 0  # no auto-DJ unless a test asks for it
    station.save()

    def make(title: str, seconds: float = 1.0, artist: str = "", kind: str = "song") -> Track:
        path = make_tone(tmp_path / f"{title}.mp3", seconds=seconds, title=title, artist=artist or None)
        track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                  original_name=f"{title}.mp3", hints={"kind": kind})
        return track_analyse(track=track)

    return make


@pytest.fixture
def worker(station):
    events: queue.Queue = queue.Queue()
    engine = Engine(OutputConfig("dummy"), events)
    player = PlaybackWorker(station, engine, events, owner="test:1:x")
    player.recover()
    yield player
    engine.release()


def run_until(worker: PlaybackWorker, predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.step(timeout=0.02)
        value = predicate()
        if value:
            return value
    raise AssertionError("condition not met within the time limit")


def logs(station) -> list[PlayLog]:
    return list(PlayLog.objects.filter(station=station).order_by("started_at", "id"))


def issue(worker, station, action, **args) -> PlayerCommand:
    command = services.command_issue(station=station, action=action, args=args)
    worker.nudged = True
    return command


def test_a_sequence_plays_in_order_and_is_logged(station, tone_track, worker):
    tracks = [tone_track(name) for name in ("One", "Two", "Three")]
    for track in tracks:
        services.queue_append(station=station, track=track)
    run_until(worker, lambda: len(logs(station)) == 3)
    rows = logs(station)
    assert [r.title for r in rows] == ["One", "Two", "Three"]
    assert {r.outcome for r in rows} == {PlayLog.Outcome.COMPLETED}
    for row in rows:
        assert 0.8 < row.played_seconds < 1.5 and row.ended_at > row.started_at
        assert row.reason == Reason.MANUAL
    assert rows[1].started_at >= rows[0].ended_at - (rows[0].ended_at - rows[0].started_at) * 0.1
    assert not QueueItem.objects.filter(station=station).exists()
    assert Track.objects.get(pk=tracks[0].pk).play_count == 1
    assert Track.objects.get(pk=tracks[0].pk).last_played_at == rows[0].started_at


def test_skip_logs_the_item_as_skipped_and_plays_the_next(station, tone_track, worker):
    long_one, nxt = tone_track("Long", seconds=5.0), tone_track("Next")
    services.queue_append(station=station, track=long_one)
    services.queue_append(station=station, track=nxt)
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Long")
    time.sleep(0.5)
    command = issue(worker, station, PlayerCommand.Action.SKIP)
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Next")
    skipped = PlayLog.objects.get(title="Long")
    assert skipped.outcome == PlayLog.Outcome.SKIPPED and 0.3 < skipped.played_seconds < 2.0
    command.refresh_from_db()
    assert command.status == PlayerCommand.Status.DONE


def test_play_now_interrupts_what_is_on_air(station, tone_track, worker):
    services.queue_append(station=station, track=tone_track("Current", seconds=5.0))
    urgent = tone_track("Breaking news", kind="newsflash")
    run_until(worker, lambda: worker.on_air is not None)
    services.play_now(station=station, track=urgent)
    worker.nudged = True
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Breaking news")
    interrupted = PlayLog.objects.get(title="Current")
    assert interrupted.outcome == PlayLog.Outcome.INTERRUPTED
    assert interrupted.failure_reason == "interrupted by play-now"


def test_pause_resume_stop_and_volume(station, tone_track, worker):
    services.queue_append(station=station, track=tone_track("Song", seconds=5.0))
    run_until(worker, lambda: worker.on_air is not None)
    issue(worker, station, PlayerCommand.Action.PAUSE)
    run_until(worker, lambda: worker.paused)
    assert PlayerState.objects.get(station=station).paused
    issue(worker, station, PlayerCommand.Action.RESUME)
    run_until(worker, lambda: not worker.paused)
    issue(worker, station, PlayerCommand.Action.VOLUME, volume=40, fade_ms=100)
    run_until(worker, lambda: worker.engine.volume == 40)
    issue(worker, station, PlayerCommand.Action.STOP)
    run_until(worker, lambda: worker.on_air is None and worker.stopped)
    assert PlayLog.objects.get(title="Song").outcome == PlayLog.Outcome.INTERRUPTED
    state = PlayerState.objects.get(station=station)
    assert state.stopped and state.volume == 40 and not state.is_playing


def test_after_a_restart_the_interrupted_item_is_logged_and_the_next_plays(station, tone_track):
    services.queue_append(station=station, track=tone_track("Was on air", seconds=5.0))
    services.queue_append(station=station, track=tone_track("Comes next"))
    events: queue.Queue = queue.Queue()
    first = PlaybackWorker(station, Engine(OutputConfig("dummy"), events), events, owner="a")
    first.recover()
    run_until(first, lambda: PlayerState.objects.get(station=station).current_log_uid)
    first.engine.release()  # the process dies: no clean finish

    events2: queue.Queue = queue.Queue()
    second = PlaybackWorker(station, Engine(OutputConfig("dummy"), events2), events2, owner="b")
    second.recover()
    try:
        run_until(second, lambda: second.on_air and second.on_air.entry.title == "Comes next")
        interrupted = PlayLog.objects.get(title="Was on air")
        assert interrupted.outcome == PlayLog.Outcome.INTERRUPTED
        assert interrupted.failure_reason == "playback worker restarted"
    finally:
        second.engine.release()


def test_a_corrupt_file_is_skipped_in_under_a_second(station, tone_track, worker):
    broken, good = tone_track("Broken", seconds=3.0), tone_track("Good")
    Path(storage.absolute(broken.file)).write_bytes(b"\xff\xfb" + b"garbage" * 2000)  # cache corrupted
    services.queue_append(station=station, track=broken)
    services.queue_append(station=station, track=good)
    started = time.monotonic()
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Good")
    assert time.monotonic() - started < 1.0
    failed = PlayLog.objects.get(title="Broken")
    assert failed.outcome == PlayLog.Outcome.FAILED and failed.failure_reason


def test_a_missing_file_is_skipped_and_logged(station, tone_track, worker):
    gone, good = tone_track("Gone"), tone_track("Good")
    storage.absolute(gone.file).unlink()
    services.queue_append(station=station, track=gone)
    services.queue_append(station=station, track=good)
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Good")
    assert PlayLog.objects.get(title="Gone").failure_reason.startswith("audio file missing")


def test_auto_dj_tops_up_without_the_same_artist_back_to_back(station, tone_track, worker):
    for i, artist in enumerate(["Abba", "Abba", "Abba", "Queen", "Queen", "Beatles"]):
        tone_track(f"Song {i}", artist=artist)
    station.queue_min_depth = 3
    station.save()
    worker.station.queue_min_depth = 3
    run_until(worker, lambda: len(logs(station)) >= 3, timeout=20)
    artists = [r.artist for r in logs(station)]
    assert all(a != b for a, b in zip(artists, artists[1:], strict=False))
    assert {r.reason for r in logs(station)} == {Reason.AUTODJ}


def test_emergency_playlist_plays_when_nothing_else_can(station, tone_track, worker):
    rescue = tone_track("Rescue loop", kind="jingle")
    EmergencyTrack.objects.create(station=station, track=rescue)
    worker.backstage.request_pool()  # as the worker asks when its pool runs dry
    started = time.monotonic()
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.reason == Reason.EMERGENCY)
    assert worker.on_air.entry.title == "Rescue loop"
    assert time.monotonic() - started < 2.0


def test_dead_air_raises_an_alert(station, worker):
    station.silence_alert_seconds = 1
    station.save()
    worker.station.silence_alert_seconds = 1
    run_until(worker, lambda: Notification.objects.filter(station=station, source="playback").exists(),
              timeout=5)
    assert "Dead air" in Notification.objects.get(source="playback").message


def test_queue_refuses_an_unplayable_track(station, tone_track, make_user):
    track = tone_track("Disabled")
    track.enabled = False
    track.save()
    with pytest.raises(services.QueueError, match="disabled"):
        services.queue_append(station=station, track=track, actor=make_user(Role.EDITOR, station))


@pytest.mark.django_db(transaction=True)
def test_a_silent_redis_never_holds_up_the_next_item(station, tone_track, settings):
    import socket

    from channels.layers import channel_layers

    from radio.notify import ChannelLoop, send_in_background

    # A Redis that takes connections and never answers (a blackholed host), unlike a
    # refusal: every send would wait for the layer's socket time-out.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                              "socket_connect_timeout": 2, "socket_timeout": 10}]}}}
    channel_layers.backends.clear()
    events: queue.Queue = queue.Queue()
    player = PlaybackWorker(station, Engine(OutputConfig("dummy"), events), events, owner="t")
    for name, artist in (("One", "A"), ("Two", "B"), ("Three", "C")):
        tone_track(name, artist=artist)
    station.queue_min_depth = 2  # auto-DJ tops up from the worker: queue notices and nudges
    station.save()
    player.station.queue_min_depth = 2
    channels = ChannelLoop()
    send_in_background(channels)  # as the playback_worker command does
    try:
        started = time.monotonic()
        player.recover()
        run_until(player, lambda: len(logs(station)) == 3)
        # Three one-second items back to back, though every status, notice and nudge hangs.
        assert time.monotonic() - started < 5.0
        assert [r.outcome for r in logs(station)] == [PlayLog.Outcome.COMPLETED] * 3
    finally:
        send_in_background(None)
        channels.close()
        player.engine.release()
        silent.close()
        channel_layers.backends.clear()


def test_watchdog_moves_on_when_audio_stops_leaving_the_engine(station, tone_track, worker):
    stuck, good = tone_track("Stuck", seconds=6.0), tone_track("After")
    services.queue_append(station=station, track=stuck)
    services.queue_append(station=station, track=good)
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Stuck")
    run_until(worker, lambda: worker.engine.sink.frames_heard > 0)
    # The output stops taking audio (a hung sound card): VLC itself still says "playing".
    with worker.engine.sink.cond:
        worker.engine.sink.paused_at = 0
    stopped = time.monotonic()
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "After", timeout=10)
    assert 2.0 <= time.monotonic() - stopped < 3.0
    with worker.engine.sink.cond:
        worker.engine.sink.paused_at = None
    row = PlayLog.objects.get(title="Stuck")
    assert row.outcome == PlayLog.Outcome.FAILED and "no audio left the engine" in row.failure_reason
    assert row.played_seconds < 2.5  # what was heard, not the time it sat there


def test_watchdog_moves_on_when_an_item_overruns_its_length(station, tone_track, worker):
    long_one, good = tone_track("Longer than listed", seconds=8.0), tone_track("Next")
    Track.objects.filter(pk=long_one.pk).update(duration=1.0, cue_out=1.0)  # wrong length on file
    Track.objects.filter(pk=long_one.pk).update(cue_out=None)
    services.queue_append(station=station, track=Track.objects.get(pk=long_one.pk))
    services.queue_append(station=station, track=good)
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Longer than listed")
    started = time.monotonic()
    run_until(worker, lambda: worker.on_air and worker.on_air.entry.title == "Next", timeout=10)
    assert 2.5 < time.monotonic() - started < 4.0  # its listed 1 s, then 2 s of grace
    row = PlayLog.objects.get(title="Longer than listed")
    assert "after its due end" in row.failure_reason


def test_a_failing_write_behind_job_is_logged_and_the_next_ones_still_run(station, tone_track, worker, caplog):
    track = tone_track("Survivor")
    services.queue_append(station=station, track=track)
    worker.later(lambda: 1 / 0)  # a bug in one job
    run_until(worker, lambda: len(logs(station)) == 1)
    assert "write-behind job failed" in caplog.text
    assert logs(station)[0].title == "Survivor"


def test_the_join_delay_halves_the_outputs_lag_behind_vlc(station, tone_track, worker):
    # libvlc starts each next item's timeline ~56 ms inside the last one's: started at once,
    # every join would put the output ~56 ms further behind; the worker waits 30 ms of it.
    for n in range(10):
        services.queue_append(station=station, track=tone_track(f"Join {n}", seconds=2.0))
    leads = []
    start = worker.start

    def start_and_note(entry):
        leads.append(worker.engine.ahead())
        return start(entry)

    worker.start = start_and_note
    run_until(worker, lambda: len(logs(station)) == 10, timeout=40)
    per_join = (leads[-1] - leads[1]) / (len(leads) - 2)
    assert per_join < 0.035, leads
