"""Overlapping calendar events and programme slots made one timeline (scheduling/timeline.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduling.timeline import Entry, resolve

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(id, start, end, source="slot", **kw) -> Entry:
    return Entry(id=id, start=at(start), end=at(end), source=source, **kw)


def spans(placed) -> list[tuple]:
    return [(e.id, (e.start - T0).total_seconds() / 60, (e.end - T0).total_seconds() / 60) for e in placed]


def test_entries_that_do_not_overlap_are_kept_as_they_are():
    placed, conflicts = resolve([entry("b", 60, 120), entry("a", 0, 60)])
    assert spans(placed) == [("a", 0, 60), ("b", 60, 120)] and conflicts == []


def test_a_hard_start_interrupts_a_soft_show_that_overruns():
    # The 07:00 hard news interrupts the morning show, which ends early; the show is told why.
    placed, [conflict] = resolve([entry("morning", 0, 75, "calendar"),
                                  entry("news", 60, 65, "slot", hard=True)])
    assert spans(placed) == [("morning", 0, 60), ("news", 60, 65)]
    assert (conflict.winner.id, conflict.loser.id, conflict.outcome, conflict.reason) == (
        "news", "morning", "ends early", "hard over soft")


def test_a_hard_show_interrupts_another_hard_show_that_overran_by_priority():
    # AzuraCast #8557: a scheduled show could not interrupt another that overran.
    placed, [conflict] = resolve([entry("talk", 0, 70, "calendar", hard=True, priority=1),
                                  entry("sport", 60, 120, "calendar", hard=True, priority=5)])
    assert spans(placed) == [("talk", 0, 60), ("sport", 60, 120)]
    assert conflict.reason == "higher priority" and conflict.outcome == "ends early"


def test_a_soft_entry_whose_start_is_taken_starts_late():
    placed, [conflict] = resolve([entry("live", 0, 30, "calendar", hard=True), entry("music", 20, 60)])
    assert spans(placed) == [("live", 0, 30), ("music", 30, 60)]
    assert conflict.outcome == "starts late" and conflict.reason == "hard over soft"


def test_calendar_beats_slot_at_equal_mode_and_priority_and_the_loser_keeps_what_is_free():
    placed, conflicts = resolve([entry("weekly", 0, 120, "slot"), entry("special", 30, 60, "calendar")])
    # The slot keeps 0–30; what is left after the special is dropped (reported).
    assert spans(placed) == [("weekly", 0, 30), ("special", 30, 60)]
    assert [(c.winner.id, c.outcome, c.reason) for c in conflicts] == [
        ("special", "ends early", "calendar over slot")]


def test_an_entry_wholly_covered_is_dropped_and_reported():
    placed, [conflict] = resolve([entry("big", 0, 120, "calendar", hard=True), entry("small", 30, 60)])
    assert spans(placed) == [("big", 0, 120)]
    assert conflict.outcome == "dropped" and conflict.loser.id == "small"


def test_every_overlap_is_reported_with_three_entries():
    placed, conflicts = resolve([entry("a", 0, 60, "slot"), entry("b", 50, 70, "calendar"),
                                 entry("c", 55, 90, "slot", hard=True)])
    assert spans(placed) == [("a", 0, 50), ("b", 50, 55), ("c", 55, 90)]
    pairs = {(c.winner.id, c.loser.id) for c in conflicts}
    assert pairs == {("c", "b"), ("c", "a"), ("b", "a")}


def test_empty_and_backwards_entries_are_ignored():
    placed, conflicts = resolve([entry("zero", 10, 10), entry("back", 20, 10)])
    assert placed == [] and conflicts == []
