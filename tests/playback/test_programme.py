"""The programme on the on-air thread (playback/programme.py) with an injectable clock: when the
timer fires, and what back-timing chooses before a soft start. No sleeps, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playback.entry import Entry
from playback.programme import FADE_AHEAD, HARD_FADE_MS, Programme, Settings
from playback.schedule import Start

T0 = datetime(2026, 3, 27, 5, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0

    def __call__(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.mono - 1000.0)


def entry(n: int, seconds: float, kind: str = "song", path: Path | None = None) -> Entry:
    return Entry(track_id=n, title=f"t{n}", artist=f"a{n}", kind=kind, path=path or Path(__file__),
                 cue_in=0.0, cue_out=None, duration=seconds, reason="autodj")


def start(key: str, at_s: float, *, hard: bool, entries=None, fill: str = "none", length: float = 600) -> Start:
    at = T0 + timedelta(seconds=at_s)
    return Start(key=key, at=at, end=at + timedelta(seconds=length), hard=hard, label=key, fill=fill,
                 entries=entries if entries is not None else [entry(900, 60)])


def test_the_timer_fires_the_fade_then_the_start_and_nothing_before():
    clock = Clock()
    programme = Programme(clock=clock, wall=clock.wall)
    programme.update([start("news", 600, hard=True)], [])
    lead = 0.5
    fade, call = Programme.fire_times(clock.mono + 600, lead)
    assert call == clock.mono + 600 - lead
    assert fade == call - HARD_FADE_MS / 1000 - FADE_AHEAD
    # The loop sleeps until the fade (no tick in between), then until the start call.
    assert programme.next_wake(clock.mono, None, lead) == fade
    clock.mono = fade
    assert programme.next_wake(clock.mono, None, lead) == call
    programme.fading = "news"
    clock.mono = fade - 10
    assert programme.next_wake(clock.mono, None, lead) == call
    taken = programme.take(programme.starts[0])
    assert [e.track_id for e in taken] == [900]
    assert programme.next_wake(clock.mono, None, lead) is None
    programme.update([start("news", 600, hard=True)], [])  # a later read of the same start
    assert programme.starts == []


def test_a_soft_start_is_not_timed_and_the_fill_before_it_is_back_timed():
    clock = Clock()
    programme = Programme(clock=clock, wall=clock.wall)
    programme.update([start("show", 600, hard=False)],
                     [entry(50, 30, kind="jingle"), entry(51, 10, kind="jingle")], Settings(tolerance=5))
    assert programme.next_timed(None) is None
    pool = [entry(n, s) for n, s in enumerate([240, 200, 180, 170, 260, 210], start=1)]
    picked, at = [], clock.mono
    while True:
        decision = programme.choose(clock.mono, at, [], pool)
        if decision[0] != "pick":
            break
        picked.append(decision[1])
        if decision[1] in pool:
            pool.remove(decision[1])
        at += decision[1].length
    assert decision[0] == "start"
    assert abs(at - (clock.mono + 600)) <= 5, [p.length for p in picked]
    assert sum(p.length for p in picked) <= 605


def test_fade_to_fit_times_a_soft_start_the_item_on_air_would_overrun_a_little():
    clock = Clock()
    programme = Programme(clock=clock, wall=clock.wall)
    show = start("show", 300, hard=False)
    programme.update([show], [], Settings(tolerance=2, fade_to_fit=False, fade_to_fit_max=15))
    assert programme.next_timed(clock.mono + 310) is None
    programme.update([show], [], Settings(tolerance=2, fade_to_fit=True, fade_to_fit_max=15))
    assert programme.next_timed(clock.mono + 310) == (show, clock.mono + 300)
    assert programme.next_timed(clock.mono + 330) is None  # more than the maximum: never faded


def test_with_fill_rotation_the_programme_end_is_a_back_timing_target():
    clock = Clock()
    programme = Programme(clock=clock, wall=clock.wall)
    show = start("show", 0, hard=True, fill="rotation", length=900, entries=[entry(900, 300)])
    programme.update([show, start("next", 2000, hard=False)], [])
    programme.take(show)
    target = programme.soft_target()
    assert target.key == "end:show" and target.at == show.end
    clock.mono += 895
    assert programme.choose(clock.mono, clock.mono, [], [entry(1, 200)])[0] == "start"
    assert programme.take(target) == []  # the end starts nothing: the next target is the next show
    assert programme.soft_target().key == "next"


def test_before_a_hard_start_nothing_is_begun_that_it_would_cut_at_once():
    clock = Clock()
    programme = Programme(clock=clock, wall=clock.wall)
    programme.update([start("news", 100, hard=True), start("show", 700, hard=False)],
                     [entry(50, 30, kind="jingle"), entry(51, 8, kind="jingle")])
    assert programme.soft_target().key == "news"  # back-timed to, and still fired by the timer
    assert programme.next_timed(None)[0].key == "news"
    songs = [entry(1, 200), entry(2, 240)]
    decision = programme.choose(clock.mono, clock.mono + 60, [], songs)  # 40 s left: no song fits
    assert decision[0] == "pick" and decision[1].kind == "jingle"
    assert programme.choose(clock.mono, clock.mono + 98, [], songs) == ("hold",)  # 2 s: begin nothing
    assert programme.choose(clock.mono, clock.mono + 99.9, [], []) == ("hold",)  # never starts it early


def test_a_programme_item_that_would_run_past_the_programme_end_is_not_started():
    clock = Clock()
    programme = Programme(clock=clock, wall=clock.wall)
    show = start("hour", 0, hard=True, fill="rotation", length=600,
                 entries=[entry(1, 240), entry(2, 240), entry(3, 240)])
    programme.update([show], [], Settings(tolerance=10))
    assert [e.track_id for e in programme.take(show)] == [1, 2, 3]
    assert programme.next_scheduled(clock.mono + 240).track_id == 2  # 240 s of 360 left: fits
    assert programme.next_scheduled(clock.mono + 480) is None  # 240 s in 120 s: the content ends
    assert programme.scheduled == [] and programme.soft_target().key == "end:hour"
