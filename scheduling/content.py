"""From what an event or slot names to library rows, and whether they can play.

`resolve(station, kind, ref)`: a track by OnAir id or Drive file id (for song, jingle,
commercial, newsflash, sample, track), a playlist by name or slug (a "flow" of the seed
system is a playlist here), a genre by name, a show by the name on its tracks. Returns a
`Resolved` whose `error` says why not. `readiness(...)` says whether resolved content can
go on air now (present, downloaded, analysed), for the preflight.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.utils.text import slugify
from django.utils.translation import gettext as _

from library.models import Genre, Playlist, Track
from library.playlists import smart_tracks
from scheduling.directives import TRACK_KINDS
from scheduling.models import ContentKind


@dataclass
class Resolved:
    content_kind: str = ""
    track: Track | None = None
    playlist: Playlist | None = None
    genre: Genre | None = None
    show_name: str = ""
    error: str = ""


def resolve(station, kind: str | None, ref: str) -> Resolved:
    ref = (ref or "").strip()
    if not kind:
        return Resolved(error=_("The event does not say what to play."))
    if kind in (*TRACK_KINDS, "track"):
        query = Q(source="drive", source_id=ref)
        if ref.isdigit():
            query |= Q(pk=int(ref))
        track = Track.objects.filter(query, station=station).first()
        if track is None:
            return Resolved(ContentKind.TRACK, error=_("No track with id %(ref)s in the library.") % {
                "ref": ref})
        if kind != "track" and track.kind != kind:
            return Resolved(ContentKind.TRACK, track=track,
                            error=_("Track %(ref)s is a %(is)s, not a %(wanted)s.") % {
                                "ref": ref, "is": track.kind, "wanted": kind})
        return Resolved(ContentKind.TRACK, track=track)
    if kind in ("playlist", "flow"):
        playlist = Playlist.objects.filter(Q(name__iexact=ref) | Q(slug=slugify(ref, allow_unicode=True)),
                                           station=station).first()
        if playlist is None:
            return Resolved(ContentKind.PLAYLIST, error=_("No playlist named “%(ref)s”.") % {"ref": ref})
        return Resolved(ContentKind.PLAYLIST, playlist=playlist)
    if kind == "genre":
        genre = Genre.objects.filter(station=station, name__iexact=ref).first()
        if genre is None:
            return Resolved(ContentKind.GENRE, error=_("No genre named “%(ref)s”.") % {"ref": ref})
        return Resolved(ContentKind.GENRE, genre=genre)
    if kind == "show":
        if not show_tracks(station, ref).exists():
            return Resolved(ContentKind.SHOW, show_name=ref,
                            error=_("No show “%(ref)s” in the library.") % {"ref": ref})
        return Resolved(ContentKind.SHOW, show_name=ref)
    return Resolved(error=_("Unknown content kind %(kind)s.") % {"kind": kind})


def show_tracks(station, name: str):
    """A show's episodes, newest first: tracks of kind show named so (show field or title)."""
    return Track.objects.filter(Q(show_name__iexact=name) | Q(title__iexact=name), station=station,
                                kind=Track.Kind.SHOW).order_by("-created_at")


def readiness(station, *, content_kind: str, track=None, playlist=None, genre=None,
              show_name: str = "") -> str:
    """Empty when the content can go on air now; otherwise why not."""
    if content_kind == ContentKind.TRACK:
        if track is None:
            return _("The track is gone from the library.")
        if not track.is_playable:
            return _not_playable(track)
        return ""
    if content_kind == ContentKind.PLAYLIST:
        if playlist is None:
            return _("The playlist is gone.")
        if playlist.kind == Playlist.Kind.SMART:
            return "" if smart_tracks(playlist).exists() else _("The smart playlist picks no playable track.")
        playable = Track.objects.playable().filter(playlist_items__playlist=playlist)
        return "" if playable.exists() else _("No track of the playlist is playable yet.")
    if content_kind == ContentKind.GENRE:
        if genre is None:
            return _("The genre is gone.")
        ok = Track.objects.playable().filter(genre=genre, kind=Track.Kind.SONG).exists()
        return "" if ok else _("No playable song in the genre.")
    if content_kind == ContentKind.SHOW:
        episode = show_tracks(station, show_name).first()
        if episode is None:
            return _("No show “%(ref)s” in the library.") % {"ref": show_name}
        return "" if episode.is_playable else _not_playable(episode)
    return ""


def _not_playable(track: Track) -> str:
    if not track.enabled:
        why = _("disabled")
    elif track.missing_since is not None:
        why = _("missing from its source")
    elif track.analysis == Track.Analysis.PENDING:
        why = _("not analysed yet")
    elif track.analysis == Track.Analysis.FAILED:
        why = _("unplayable: %(error)s") % {"error": track.analysis_error or "?"}
    else:
        why = _("not downloaded yet")
    return _("“%(track)s” cannot play: %(why)s.") % {"track": track, "why": why}
