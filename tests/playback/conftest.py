"""Playback fixtures: tracks that may go on air (real audio, imported and marked analysed)."""

from __future__ import annotations

import pytest

# Models and services are imported inside fixtures: this conftest loads before Django is set up.


@pytest.fixture(scope="session")
def tone_file(tmp_path_factory):
    """One second of real MP3 audio, imported again for every track a test needs."""
    from tests.library.audio import make_tone

    return make_tone(tmp_path_factory.mktemp("tones") / "tone.mp3", seconds=1.0)


@pytest.fixture
def make_playable(station, tone_file):
    """make_playable(title, artist="", station=…, kind="song", **fields) → a Track that is_playable."""
    from library.models import Track
    from library.services import track_import_file

    def make(title: str, artist: str = "", *, station=station, kind: str = Track.Kind.SONG, **fields):
        track = track_import_file(station=station, path=tone_file, source=Track.Source.UPLOAD,
                                  original_name=f"{title}.mp3",
                                  hints={"title": title, "artist": artist, "kind": kind})
        Track.objects.filter(pk=track.pk).update(**{"analysis": Track.Analysis.OK, **fields})
        track.refresh_from_db()
        return track

    return make


@pytest.fixture
def playable_track(make_playable):
    return make_playable("Boker Tov", "Kol Band")


@pytest.fixture
def tone(station, tmp_path):
    """tone(title, seconds, freq=…, level_db=…, kind="song") → an imported, analysed MP3 tone track."""
    from library.models import Track
    from library.services import track_analyse, track_import_file
    from tests.library.audio import make_tone

    def make(title: str, seconds: float, *, freq: float, level_db: float, kind: str = "song") -> Track:
        path = make_tone(tmp_path / f"{title}.mp3", seconds=seconds, title=title, freq=freq, level_db=level_db)
        track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                  original_name=f"{title}.mp3", hints={"kind": kind})
        return track_analyse(track=track)
    return make


@pytest.fixture
def start_worker(station):
    """start_worker(config, audio_sink=None, owner=…) → a recovered PlaybackWorker on a real engine for
    the station (auto-DJ off: the test queues what plays); its engine is released at the end."""
    import queue

    from playback.engine import Engine
    from playback.worker import PlaybackWorker

    engines = []

    def start(config, *, audio_sink=None, owner: str = "test:1:worker"):
        station.queue_min_depth = 0
        station.save()
        events: queue.Queue = queue.Queue()
        engine = Engine(config, events, audio_sink=audio_sink)
        engines.append(engine)
        player = PlaybackWorker(station, engine, events, owner=owner)
        player.recover()
        return player

    yield start
    for engine in engines:
        engine.release()
