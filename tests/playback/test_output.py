"""The paced output sink: what leaves the engine, when it is heard, and no drift across joins."""

from __future__ import annotations

import queue

import numpy as np

from playback.engine import Engine, OutputConfig
from playback.output import squeeze
from tests.library.audio import make_tone


def _ended(events: queue.Queue) -> None:
    while True:
        if events.get(timeout=10)[1] == "end":
            return


def test_output_latency_stays_bounded_across_many_joins(tmp_path):
    files = [make_tone(tmp_path / f"t{n}.mp3", seconds=2.0, freq=300 + 40 * n) for n in range(8)]
    events: queue.Queue = queue.Queue()
    engine = Engine(OutputConfig("dummy"), events)
    try:
        leads = []
        for path in files:
            engine.start(engine.prepare(path))
            _ended(events)
            leads.append(engine.ahead())
        # VLC overlaps each next item by ~50 ms: without catching up, 8 joins would add ~0.4 s.
        assert leads[-1] - leads[0] < 0.15, leads
        assert engine.sink.frames_heard > 0
    finally:
        engine.release()


def test_squeeze_resamples_without_dropping_a_sample_outright():
    t = np.arange(1152) / 44100
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    pcm = np.stack([tone, tone], axis=1).tobytes()
    out = np.frombuffer(squeeze(pcm, 12), dtype="<i2").reshape(-1, 2)
    assert out.shape == (1140, 2)
    assert out[0, 0] == tone[0] and out[-1, 0] == tone[-1]  # ends kept: buffers join smoothly
    assert np.abs(np.diff(out[:, 0].astype(int))).max() < 600  # no jump where samples went
