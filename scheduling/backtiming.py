"""Back-timing: fill the time before a soft start so that it lands on time, cutting nothing.

A pure rule (no database, no clock). Given the seconds left until a soft event, the rotation's
next songs in the order rotation would play them, and the station's short items (jingles,
station IDs), choose what plays so that the last item ends as close to the event's time as
possible — never "one more song" that makes it late by minutes (AzuraCast #703, #3989, #6959).

How: songs are taken in rotation order while plenty of time is left; the last stretch
(`horizon` seconds or a song more; by default one and a half of the rotation's median song)
is chosen by search over up to `max_tail_songs` of the next `window` rotation songs plus up
to `max_shorts` short items, minimising |error|, then preferring songs earlier in rotation
and fewer items. The result says the expected error: negative when the fill ends early (the
event starts early, or the gap is left to auto-DJ), positive when late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations


@dataclass(frozen=True)
class Item:
    id: int | str
    seconds: float  # the length as heard (after cues; minus the crossfade overlap when there is one)


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    error: float = 0.0  # fill end minus the event's time, seconds

    @property
    def seconds(self) -> float:
        return sum(item.seconds for item in self.items)


def backtime(remaining: float, songs: Sequence[Item], shorts: Sequence[Item] = (), *,
             horizon: float | None = None, window: int = 12, max_tail_songs: int = 3,
             max_shorts: int = 2) -> Plan:
    """What to play in `remaining` seconds; see the module's docstring."""
    if remaining <= 0:
        return Plan([], -remaining)
    plan: list[Item] = []
    left = remaining
    pool = list(songs)
    if horizon is None:  # about two songs: the tail's search then has one to three to choose from
        lengths = sorted(item.seconds for item in pool[:window]) or [0.0]
        horizon = 1.5 * lengths[len(lengths) // 2]
    # Plenty of time: rotation as usual, keeping at least `horizon` for the fitted tail.
    while pool and left - pool[0].seconds >= horizon:
        song = pool.pop(0)
        plan.append(song)
        left -= song.seconds
    tail = _best_tail(left, pool[:window], list(shorts), max_tail_songs, max_shorts)
    plan.extend(tail)
    return Plan(plan, sum(item.seconds for item in plan) - remaining)


def _best_tail(left: float, songs: list[Item], shorts: list[Item], max_songs: int,
               max_shorts: int) -> list[Item]:
    best: tuple | None = None
    best_items: list[Item] = []
    short_sets = [()]
    for count in range(1, max_shorts + 1):
        short_sets.extend(combinations(range(len(shorts)), count))
    for count in range(0, max_songs + 1):
        for song_idx in combinations(range(len(songs)), count):
            song_seconds = sum(songs[i].seconds for i in song_idx)
            if song_seconds - left > 0 and best is not None and abs(song_seconds - left) > best[0]:
                continue  # already too long, and longer can only be worse
            for short_idx in short_sets:
                total = song_seconds + sum(shorts[i].seconds for i in short_idx)
                # |error| first, then songs early in rotation, then fewer items.
                key = (round(abs(total - left), 3), sum(song_idx), count + len(short_idx))
                if best is None or key < best:
                    best = key
                    best_items = [songs[i] for i in song_idx] + [shorts[i] for i in short_idx]
    return best_items
