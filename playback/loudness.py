"""Loudness normalisation and fade curves for the mixer: pure rules, no audio I/O.

`item_gain_db`: the gain that brings an item from its measured integrated loudness (EBU R128,
stored by the library's analysis) to the station's target, plus a per-kind offset, without
letting its measured true peak pass the ceiling. When the peak forbids the full gain, the
result says by how much a limiter would have to hold it (`limited_db`); the mixer then either
applies the capped gain (quieter than the target, never clipping) or the full gain through its
limiter. Unknown loudness (not analysed) plays at unity gain.

`fade(n, shape)`: gain curves over n samples, from 1 to 0 (reverse for a fade-in). An equal-power
pair (cos/sin quarter waves) keeps a crossfade between uncorrelated material at constant
loudness; a linear pair keeps correlated material (the same song) at constant amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TARGET_LUFS = -16.0
DEFAULT_CEILING_DBTP = -1.0
MAX_BOOST_DB = 15.0  # a near-silent file is not lifted into the noise floor's territory


@dataclass(frozen=True)
class Gain:
    db: float  # applied to the item
    wanted_db: float  # what the target alone asked for
    limited_db: float  # wanted − applied: what the peak ceiling took away (0 when none)

    @property
    def linear(self) -> float:
        return float(10 ** (self.db / 20))


def item_gain_db(loudness_lufs: float | None, true_peak_dbtp: float | None, *,
                 target_lufs: float = DEFAULT_TARGET_LUFS, offset_db: float = 0.0,
                 ceiling_dbtp: float = DEFAULT_CEILING_DBTP, max_boost_db: float = MAX_BOOST_DB) -> Gain:
    """The gain for one item; see the module's docstring."""
    if loudness_lufs is None or not np.isfinite(loudness_lufs):
        return Gain(0.0, 0.0, 0.0)
    wanted = min(max_boost_db, target_lufs + offset_db - loudness_lufs)
    applied = wanted
    if true_peak_dbtp is not None and np.isfinite(true_peak_dbtp):
        applied = min(applied, ceiling_dbtp - true_peak_dbtp)
    return Gain(round(applied, 3), round(wanted, 3), round(max(0.0, wanted - applied), 3))


def fade(n: int, shape: str = "equal_power") -> np.ndarray:
    """A fade-out gain curve of n samples (1 → 0), float32; `[::-1]` is the matching fade-in."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    x = (np.arange(n, dtype=np.float64) + 0.5) / n
    if shape == "linear":
        curve = 1.0 - x
    elif shape == "equal_power":
        curve = np.cos(x * np.pi / 2)
    else:
        raise ValueError(f"unknown fade shape {shape!r}")
    return curve.astype(np.float32)
