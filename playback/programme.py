"""The programme on the on-air thread: when scheduled starts fire, and the fill before soft ones.

Kept apart from the worker (playback/worker.py) and driven by it; everything here is in memory
(the backstage thread reads the starts, playback/schedule.py) and takes the clock as given, so
the timer and the choices are tested step by step with an injectable clock.

- **Hard start**: at `at − lead − fade − FADE_AHEAD` the item on air starts fading (a ramp the
  loop advances; the on-air thread never sleeps through it), and at `at − lead` the programme's
  first item is started with its due time: the output holds it back to `at` exactly (the paced
  sink's gate), so the error is what the engine measures, not the loop's wake-up. `lead` is the
  engine's measured start latency plus a margin (Engine.start_lead). The worker's loop waits on
  its event queue with the time to the next firing as time-out: no polling tick.
- **Before any start**, hard ones too, the fill is back-timed, so a hard start fades out at most the
  plan's last error, never a song begun just before it; within HOLD_BEFORE_HARD nothing begins.
- **Soft start**: never waits for "one more song". Each time the next item is chosen while a soft
  start (or, with fill "rotation", the end of the programme on air) is within BACKTIME_WINDOW,
  the fill is planned again by back-timing (scheduling/backtiming.py) over what is queued, the
  auto-DJ pool and the station's short items, from when the next item will begin to be heard;
  its first item is what plays. The programme starts when nothing would land it closer (within
  the station's tolerance, clearly closer). With
  "fade to fit" on, an item that would overrun a soft start by at most the station's maximum is
  faded out on time, as for a hard start.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from playback.entry import Entry
from playback.loudness import item_gain_db
from scheduling.backtiming import Item, backtime

logger = logging.getLogger(__name__)

HARD_FADE_MS = 1500  # a hard start fades out what plays over this long
FADE_AHEAD = 0.3  # s: audio handed to the output before it is heard; the fade must be in it
BACKTIME_WINDOW = 3600.0  # s: soft starts nearer than this shape the fill
CLOSE_ENOUGH = 0.5  # s: a soft start this near starts now
HOLD_BEFORE_HARD = 3.0  # s: with a hard start this near, nothing new begins (a short silence, not a cut)
LATE_LIMIT = 120.0  # s: a hard start missed by more than this (worker down) starts as soft


@dataclass
class Settings:
    tolerance: float = 10.0
    fade_to_fit: bool = False
    fade_to_fit_max: float = 15.0
    # Broadcast sound (playback/loudness.py)
    normalise: bool = True
    target_lufs: float = -16.0
    ceiling_dbtp: float = -1.0
    offsets: dict[str, float] = field(default_factory=dict)  # by kind, dB
    crossfade: float = 0.0  # s: songs overlap by this much (0: butt joins)

    def gain_db(self, entry: Entry) -> float:
        """The item's gain on air: to the target (plus its kind's offset), capped by its true peak."""
        if not self.normalise:
            return 0.0
        return item_gain_db(entry.loudness_lufs, entry.true_peak_dbtp, target_lufs=self.target_lufs,
                            offset_db=self.offsets.get(entry.kind, 0.0), ceiling_dbtp=self.ceiling_dbtp).db


@dataclass
class Boundary:
    """The end of the programme on air, when it asks for the fill to be back-timed to it."""
    key: str
    at: datetime
    hard: bool = False
    label: str = ""
    entries: list[Entry] | None = None
    fill: str = "none"


class Programme:
    def __init__(self, *, clock: Callable[[], float], wall: Callable[[], datetime]) -> None:
        self.clock, self.wall = clock, wall
        self.starts: list = []  # playback.schedule.Start, sorted by time
        self.shorts: list[Entry] = []
        self.settings = Settings()
        self.scheduled: list[Entry] = []  # the rest of the programme on air
        self.current = None  # the Start on air
        self.done: deque[str] = deque(maxlen=500)
        self.fading: str | None = None  # key of the start whose fade is running

    def update(self, starts: list, shorts: list[Entry], settings: Settings | None = None) -> None:
        done = set(self.done)
        self.starts = sorted((s for s in starts if s.key not in done), key=lambda s: s.at)
        self.shorts = shorts
        if settings is not None:
            self.settings = settings

    def quiet(self, now: float, horizon: float = BACKTIME_WINDOW) -> bool:
        """No programme on air and none starting within `horizon`: nothing to back-time to."""
        if self.scheduled:
            return False
        return all(self.mono_of(s.at) - now > horizon for s in self.starts if s.key not in self.done)

    def mono_of(self, at: datetime) -> float:
        """A UTC instant on the worker's clock."""
        return self.clock() + (at - self.wall()).total_seconds()

    # --- hard starts ------------------------------------------------------------------

    def next_timed(self, on_air_end: float | None) -> tuple[object, float] | None:
        """The next start to fire on the timer: (start, due on the clock).

        A hard start; or, with fade to fit, a soft start the item on air would overrun by no more
        than the station's maximum.
        """
        for start in self.starts:
            if start.key in self.done:
                continue
            at = self.mono_of(start.at)
            if start.hard:
                return start, at
            if (self.settings.fade_to_fit and on_air_end is not None
                    and self.settings.tolerance < on_air_end - at <= self.settings.fade_to_fit_max):
                return start, at
            return None  # a soft start comes first: the fill is back-timed to it
        return None

    @staticmethod
    def fire_times(at: float, lead: float) -> tuple[float, float]:
        """(start fading, call start) on the clock for a start due at `at`."""
        call = at - lead
        return call - HARD_FADE_MS / 1000 - FADE_AHEAD, call

    def next_wake(self, now: float, on_air_end: float | None, lead: float) -> float | None:
        """When the loop must next look at the programme (None: nothing timed)."""
        timed = self.next_timed(on_air_end)
        if timed is None:
            return None
        start, at = timed
        fade, call = self.fire_times(at, lead)
        return call if self.fading == start.key or now >= fade else fade

    def take(self, start) -> list[Entry]:
        """The start fires: its entries that can play (the first plays now, the rest follow)."""
        self.done.append(start.key)
        if start in self.starts:
            self.starts.remove(start)
        if self.fading == start.key:
            self.fading = None
        entries = [e for e in (start.entries or []) if e.path.is_file()]
        if not isinstance(start, Boundary):
            self.current = start
            self.scheduled = entries[1:]
        return entries

    def next_scheduled(self, begins: float) -> Entry | None:
        """The programme's next item, if it still fits before the programme's end (`begins`: when it
        would begin to be heard). One that does not ends the content: the rest of the programme's
        time is back-timed fill (fill "rotation") or auto-DJ's."""
        while self.scheduled:
            entry = self.scheduled.pop(0)
            if not entry.path.is_file():
                continue
            if self.current is not None and entry.length:
                left = self.mono_of(self.current.end) - begins
                if entry.length > left + self.settings.tolerance:
                    logger.info("programme %s: %s (%.0f s) does not fit in the %.0f s left; content ends",
                                self.current.label, entry.title, entry.length, left)
                    self.scheduled.clear()
                    return None
            return entry
        return None

    # --- soft starts: back-timing -----------------------------------------------------

    def soft_target(self):
        """What the fill is back-timed to: the next start (a hard one too: its timer still starts it on
        the second, but nothing is begun that it would cut at once), or the programme's end when
        it is filled from rotation."""
        end = None
        if self.current is not None and self.current.fill == "rotation" and not self.scheduled:
            key = f"end:{self.current.key}"
            if key not in self.done:
                end = Boundary(key=key, at=self.current.end, label=self.current.label)
        for start in self.starts:
            if start.key in self.done:
                continue
            if end is not None and end.at <= start.at:
                return end
            return start
        return end

    def choose(self, now: float, begins: float, queued: list[Entry], pool: list[Entry]) -> tuple:
        """What the next item is while a start is near.

        `begins`: when the next item will begin to be heard, on the clock. Returns
        ("start", start) to start a soft programme now, ("pick", entry) to play a back-timed
        item (the caller takes it off its list), ("hold",) to begin nothing before a hard start
        that is a moment away (its timer starts it), or ("none",) when back-timing has no say.
        """
        target = self.soft_target()
        if target is None:
            return ("none",)
        remaining = self.mono_of(target.at) - begins
        if remaining > BACKTIME_WINDOW:
            return ("none",)
        hard = getattr(target, "hard", False)
        if remaining <= (HOLD_BEFORE_HARD if hard else CLOSE_ENOUGH):
            return ("hold",) if hard else ("start", target)
        songs = [e for e in [*queued, *pool] if e.length and e.kind == "song"]
        by_id: dict[str, Entry] = {}
        items = []
        for n, entry in enumerate(songs):
            by_id[f"s{n}"] = entry
            items.append(Item(f"s{n}", entry.length))
        shorts = []
        for n, entry in enumerate(self.shorts):
            if entry.length:
                by_id[f"j{n}"] = entry
                shorts.append(Item(f"j{n}", entry.length))
        plan = backtime(remaining, items, shorts)
        if hard:
            if not plan.items:
                return ("hold",)
            # The timer fades out whatever the plan leaves over: never a song begun only to be cut.
        elif not plan.items or abs(plan.error) >= remaining - CLOSE_ENOUGH \
                or (remaining <= self.settings.tolerance and abs(plan.error) > remaining / 2):
            # Nothing lands it closer than starting now (within the tolerance: clearly closer).
            return ("start", target)
        pick = by_id[str(plan.items[0].id)]
        if pick in self.shorts:  # the next gap uses another one first
            self.shorts.remove(pick)
            self.shorts.append(pick)
        logger.info("back-timing to %s: %.1f s left, plan of %d items ends %+.1f s off", target.label or
                    target.key, remaining, len(plan.items), plan.error)
        return ("pick", pick)
