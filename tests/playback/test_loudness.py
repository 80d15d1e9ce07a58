"""Loudness normalisation and fade curves (playback/loudness.py): pure rules, plain pytest."""

from __future__ import annotations

import numpy as np
import pytest

from playback.loudness import fade, item_gain_db


def test_items_are_brought_to_the_target_and_kinds_get_their_offset():
    assert item_gain_db(-22.0, -8.0).db == pytest.approx(6.0)  # -22 LUFS → -16
    assert item_gain_db(-10.0, -0.5).db == pytest.approx(-6.0)  # loud masters come down
    assert item_gain_db(-20.0, -12.0, offset_db=-3.0).db == pytest.approx(1.0)  # jingles a bit under


def test_the_true_peak_ceiling_caps_the_gain_and_says_by_how_much():
    gain = item_gain_db(-24.0, -3.0)  # wants +8 dB, the peak allows +2
    assert gain.db == pytest.approx(2.0) and gain.wanted_db == pytest.approx(8.0)
    assert gain.limited_db == pytest.approx(6.0)
    assert -3.0 + gain.db <= -1.0  # never over the ceiling


def test_unknown_loudness_plays_at_unity_and_silence_is_not_lifted_without_limit():
    assert item_gain_db(None, None).db == 0.0
    assert item_gain_db(float("-inf"), None).db == 0.0
    assert item_gain_db(-60.0, -50.0).db == pytest.approx(15.0)


@pytest.mark.parametrize("shape", ["equal_power", "linear"])
def test_fades_run_from_one_to_zero_and_pair_up(shape):
    out = fade(44100, shape)
    assert out.dtype == np.float32 and out[0] > 0.999 and out[-1] < 0.001
    assert np.all(np.diff(out) <= 0)
    paired = out ** 2 + out[::-1] ** 2 if shape == "equal_power" else out + out[::-1]
    assert np.allclose(paired, 1.0, atol=1e-3)  # constant power (or amplitude) through a crossfade


def test_a_bad_shape_is_refused():
    with pytest.raises(ValueError):
        fade(10, "s-curve")
