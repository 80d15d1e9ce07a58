"""Back-timing a soft start (scheduling/backtiming.py): pure rule, seeded libraries of real lengths."""

from __future__ import annotations

import random
import statistics
import time

from scheduling.backtiming import Item, backtime


def _library(rng: random.Random, count: int, low: float, high: float, prefix: str) -> list[Item]:
    return [Item(f"{prefix}{n}", round(rng.uniform(low, high), 2)) for n in range(count)]


def test_soft_starts_land_within_seconds_on_real_length_songs_without_cutting_any():
    rng = random.Random(20261201)
    errors = []
    for _ in range(300):
        songs = _library(rng, 40, 150, 300, "s")  # 2.5–5 minutes, in rotation order
        shorts = _library(rng, 8, 5, 30, "j")  # jingles and station IDs
        remaining = rng.uniform(600, 3600)
        plan = backtime(remaining, songs, shorts)
        assert abs(plan.seconds - remaining - plan.error) < 1e-6  # the error is what the plan adds up to
        assert len({item.id for item in plan.items}) == len(plan.items)  # nothing twice
        errors.append(abs(plan.error))
    errors.sort()
    median, p95 = statistics.median(errors), errors[int(0.95 * len(errors)) - 1]
    assert median <= 5.0 and p95 <= 15.0, (median, p95)


def test_songs_go_in_rotation_order_while_time_is_plenty():
    songs = [Item(n, 200.0) for n in range(30)]
    plan = backtime(3000.0, songs, [Item("id", 10.0)])
    ids = [item.id for item in plan.items if item.id != "id"]
    assert ids[:10] == list(range(10))  # the head is rotation, untouched
    assert abs(plan.error) <= 10.0


def test_never_one_more_song_when_it_would_make_the_event_late():
    # 100 s left, songs of 4 minutes, a 20 s and a 30 s jingle: the jingles, not a song.
    plan = backtime(100.0, [Item("long", 240.0)], [Item("j20", 20.0), Item("j30", 30.0)])
    assert [item.id for item in plan.items] == ["j20", "j30"] and plan.error == -50.0


def test_an_exact_fit_is_taken_and_earlier_rotation_songs_win_ties():
    songs = [Item("a", 180.0), Item("b", 200.0), Item("c", 180.0)]
    plan = backtime(380.0, songs, [])
    assert [item.id for item in plan.items] == ["a", "b"] and plan.error == 0.0


def test_nothing_left_or_late_already():
    assert backtime(0.0, [Item("a", 100.0)]).items == []
    late = backtime(-12.0, [Item("a", 100.0)])
    assert late.items == [] and late.error == 12.0


def test_a_plan_is_quick_enough_for_the_backstage_thread():
    rng = random.Random(7)
    songs, shorts = _library(rng, 200, 150, 300, "s"), _library(rng, 12, 5, 30, "j")
    started = time.perf_counter()
    backtime(3600.0, songs, shorts)
    assert time.perf_counter() - started < 1.0  # a bound against a runaway search, not a benchmark
