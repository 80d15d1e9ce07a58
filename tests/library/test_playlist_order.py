"""The order of a static playlist (library/playlist_order.py): pure rules."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from library.playlist_order import pass_order, pick_by_cursor, pick_random

ITEMS = [11, 12, 13, 14, 15]


def test_in_order_plays_the_list_and_starts_again_from_the_top():
    assert pick_by_cursor(ITEMS, "in_order", cursor=3, count=5) == [14, 15, 11, 12, 13]


def test_shuffle_plays_each_item_once_per_pass_in_a_new_order_each_pass():
    picks = pick_by_cursor(ITEMS, "shuffle", cursor=0, count=15, seed="playlist-7")
    passes = [picks[0:5], picks[5:10], picks[10:15]]
    assert all(sorted(p) == ITEMS for p in passes)
    assert len({tuple(p) for p in passes}) > 1  # not the same order every pass


def test_shuffle_continues_the_same_pass_after_a_restart():
    first = pick_by_cursor(ITEMS, "shuffle", cursor=0, count=3, seed="p")
    rest = pick_by_cursor(ITEMS, "shuffle", cursor=3, count=2, seed="p")  # a new worker, the cursor kept
    assert first + rest == pass_order(ITEMS, seed="p", pass_number=0)


def test_random_plays_none_twice_in_a_cycle_and_never_repeats_across_the_edge():
    rng = random.Random(3)
    cycle, last, played = set(), None, []
    for _ in range(40):  # one at a time, as a worker asks
        [pick], cycle = pick_random(ITEMS, cycle=cycle, last=last, count=1, rng=rng)
        played.append(pick)
        last = pick
    for start in range(0, 40, 5):
        assert sorted(played[start:start + 5]) == ITEMS
    assert all(a != b for a, b in zip(played, played[1:], strict=False))
    assert Counter(played) == {item: 8 for item in ITEMS}


def test_random_takes_edits_as_they_are():
    rng = random.Random(1)
    picks, cycle = pick_random([1, 2, 3], cycle={1, 2, 99}, last=2, count=1, rng=rng)
    assert picks == [3] and cycle == {1, 2, 3}  # 99 was removed from the playlist: not counted
    picks, cycle = pick_random([1, 2, 3, 4], cycle=cycle, last=3, count=1, rng=rng)
    assert picks == [4]  # added meanwhile: joins the cycle under way


def test_empty_playlists_and_unknown_modes():
    assert pick_by_cursor([], "in_order", cursor=0, count=3) == []
    assert pick_random([], cycle=set(), last=None, count=2, rng=random.Random()) == ([], set())
    with pytest.raises(ValueError):
        pick_by_cursor(ITEMS, "random", cursor=0, count=1)
