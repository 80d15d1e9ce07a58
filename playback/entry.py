"""Something that can go on air, with everything needed to play it offline (no database)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from library import storage
from library.models import Track
from playback.models import QueueItem


@dataclass
class Entry:
    """Something that can go on air, with everything needed to play it offline."""

    track_id: int
    title: str
    artist: str
    kind: str
    path: Path
    cue_in: float
    cue_out: float | None
    duration: float | None
    reason: str
    queue_item_id: int | None = None
    requested_by_id: int | None = None
    note: str = ""
    loudness_lufs: float | None = None  # from the library's analysis: the item's gain on air
    true_peak_dbtp: float | None = None

    @classmethod
    def from_track(cls, track: Track, *, reason: str, item: QueueItem | None = None, note: str = "") -> Entry:
        return cls(track_id=track.pk, title=track.title, artist=track.artist, kind=track.kind,
                   path=storage.absolute(track.file) if track.file else Path("/nonexistent"),
                   cue_in=track.cue_in or 0.0, cue_out=track.cue_out, duration=track.duration,
                   reason=reason, queue_item_id=item.pk if item else None,
                   requested_by_id=item.requested_by_id if item else None,
                   note=(item.note if item else note) or "",
                   loudness_lufs=track.loudness_lufs, true_peak_dbtp=track.true_peak_dbtp)

    @property
    def length(self) -> float | None:
        end = self.cue_out or self.duration
        return max(0.0, end - self.cue_in) if end else None
