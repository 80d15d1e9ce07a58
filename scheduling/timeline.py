"""One timeline out of overlapping calendar events and programme slots: a pure rule.

Each entry claims [start, end). Where claims overlap, the better entry keeps its time, by
this order (documented for staff in the README):

1. hard over soft (a hard start is a promise to the minute: news, a live show);
2. higher `priority`;
3. a calendar event over a programme slot (the calendar is where exceptions are written);
4. the earlier start, then the lower id (stable).

A losing entry keeps the first stretch of its own time that no better entry holds: it starts
late (a soft entry after the overrun ends; a hard entry likewise, reported as a late hard
start) and ends at its own end or where the next better entry begins; what is left of it
after that is dropped. Every overlap is reported as a `Conflict` naming both entries, what
the loser lost, and why — nothing is resolved silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

SOURCE_RANK = {"calendar": 0, "slot": 1}


@dataclass(frozen=True)
class Entry:
    id: int | str
    start: datetime
    end: datetime
    source: str  # "calendar" or "slot"
    hard: bool = False
    priority: int = 0
    label: str = ""


@dataclass(frozen=True)
class Conflict:
    winner: Entry
    loser: Entry
    start: datetime  # the overlap
    end: datetime
    outcome: str  # "starts late", "ends early", "dropped"
    reason: str  # which rule decided


def rank(entry: Entry) -> tuple:
    source = SOURCE_RANK.get(entry.source, 9)
    return (0 if entry.hard else 1, -entry.priority, source, entry.start, str(entry.id))


def _reason(winner: Entry, loser: Entry) -> str:
    if winner.hard != loser.hard:
        return "hard over soft"
    if winner.priority != loser.priority:
        return "higher priority"
    if SOURCE_RANK.get(winner.source) != SOURCE_RANK.get(loser.source):
        return "calendar over slot"
    return "earlier start"


def resolve(entries: Iterable[Entry]) -> tuple[list[Entry], list[Conflict]]:
    """The entries as they will play (sorted by start; losers trimmed or left out) and every conflict."""
    placed: list[Entry] = []
    conflicts: list[Conflict] = []
    for entry in sorted(entries, key=rank):
        if entry.end <= entry.start:
            continue
        better = sorted((p for p in placed if p.start < entry.end and entry.start < p.end),
                        key=lambda p: p.start)
        if not better:
            placed.append(entry)
            continue
        # The first stretch of the entry's own time that no better entry holds.
        cursor, start, end = entry.start, None, None
        for other in better:
            if other.start > cursor:
                start, end = cursor, other.start
                break
            cursor = max(cursor, other.end)
        if start is None and cursor < entry.end:
            start, end = cursor, entry.end
        if start is None:
            for other in better:
                overlap = (max(other.start, entry.start), min(other.end, entry.end))
                conflicts.append(Conflict(other, entry, *overlap, "dropped", _reason(other, entry)))
            continue
        kept = replace(entry, start=start, end=end)
        placed.append(kept)
        for other in better:
            outcome = ("starts late" if other.start <= entry.start < other.end
                       else "ends early" if other.start >= start else "dropped")
            overlap = (max(other.start, entry.start), min(other.end, entry.end))
            conflicts.append(Conflict(other, entry, *overlap, outcome, _reason(other, entry)))
    placed.sort(key=lambda e: (e.start, rank(e)))
    conflicts.sort(key=lambda c: (c.start, rank(c.winner)))
    return placed, conflicts
