"""The paced output sink: what leaves the engine, when it is heard, and no drift across joins."""

from __future__ import annotations

import numpy as np

from playback.output import squeeze


def test_squeeze_resamples_without_dropping_a_sample_outright():
    t = np.arange(1152) / 44100
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    pcm = np.stack([tone, tone], axis=1).tobytes()
    out = np.frombuffer(squeeze(pcm, 12), dtype="<i2").reshape(-1, 2)
    assert out.shape == (1140, 2)
    assert out[0, 0] == tone[0] and out[-1, 0] == tone[-1]  # ends kept: buffers join smoothly
    assert np.abs(np.diff(out[:, 0].astype(int))).max() < 600  # no jump where samples went
