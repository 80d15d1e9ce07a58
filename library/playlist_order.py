"""The order a static playlist plays in: a pure rule (no database).

Three modes, as stations know them:
- `in_order`: the list as written, from the top again after the last;
- `shuffle`: every pass through the list in a new order, each item once per pass; the order of
  a pass depends only on the playlist and the pass number, so a restarted worker continues the
  same pass;
- `random`: a random item each time, none again until every item has played (a cycle), and
  never the one just played first in the next cycle.

`in_order` and `shuffle` need only a cursor (how many items the playlist has given so far);
`random` the set played in the cycle under way and the last item, which the caller keeps. Items added or removed
between picks are taken as they are: a removed item is never picked, an added one joins.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

MODES = ("in_order", "shuffle", "random")


def pass_order(items: Sequence[int], *, seed: str, pass_number: int) -> list[int]:
    """The order of one shuffle pass: stable for the same playlist, items and pass."""
    order = list(items)
    random.Random(f"{seed}:{pass_number}").shuffle(order)
    return order


def pick_by_cursor(items: Sequence[int], mode: str, *, cursor: int, count: int, seed: str = "") -> list[int]:
    """The next `count` items for `in_order` or `shuffle`, starting at `cursor` (items given so far)."""
    if mode not in ("in_order", "shuffle"):
        raise ValueError(f"pick_by_cursor: mode {mode!r}")
    if not items or count <= 0:
        return []
    picks = []
    for position in range(cursor, cursor + count):
        pass_number, index = divmod(position, len(items))
        order = list(items) if mode == "in_order" else pass_order(items, seed=seed, pass_number=pass_number)
        picks.append(order[index])
    return picks


def pick_random(items: Sequence[int], *, cycle: Iterable[int], last: int | None, count: int,
                rng: random.Random) -> tuple[list[int], set[int]]:
    """The next `count` items for `random`, and the cycle after them (to keep for the next pick).

    `cycle`: what has played in the cycle under way (kept by the caller); `last`: the item the
    playlist gave last (never first again in a new cycle, when there is another).
    """
    if not items or count <= 0:
        return [], set(cycle)
    wanted = set(items)
    played = set(cycle) & wanted  # a removed item no longer counts
    picks: list[int] = []
    for _ in range(count):
        if played >= wanted:
            played = set()
        left = [item for item in items if item not in played]
        if not played and len(left) > 1:
            left = [item for item in left if item != last] or left
        last = rng.choice(left)
        picks.append(last)
        played.add(last)
    return picks, played
