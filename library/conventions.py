"""What a Drive folder path means, in English and Hebrew.

Below a watched root: the top folder names the kind (Songs/שירים, Shows/תוכניות,
Commercials/פרסומות, Jingles/ג'ינגלים, Samples, News/מבזקים); under Songs come a
genre folder and then artist folders; under Shows the show's name; under
Commercials `Batch-N` folders. A folder named for the same kind directly under a
kind folder is transparent, so a bilingual library may nest the translation
(`Songs/שירים/Rock/<artist>`, `Commercials/פרסומות/Batch-1`). Overrides set on a
folder in the admin win over the convention, a deeper folder's over a shallower one's.

Every folder-derived field is decided by the folders once the kind is known: the
fields that do not belong to the kind (a show's genre and artist, a song's batch)
are blank, so a file moved between kind folders sheds the old kind's values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from library.models import DriveFolder, Genre, Track
from library.tags import display_text

_KIND_WORDS = {
    Track.Kind.SONG: ["songs", "song", "music", "שירים", "מוזיקה"],
    Track.Kind.SHOW: ["shows", "show", "programs", "programmes", "תוכניות", "תכניות"],
    Track.Kind.COMMERCIAL: ["commercials", "commercial", "ads", "adverts", "פרסומות", "פרסומת"],
    Track.Kind.JINGLE: ["jingles", "jingle", "ג'ינגלים", "גינגלים", "ג'ינגל"],
    Track.Kind.SAMPLE: ["samples", "sample", "סמפלים", "דגימות"],
    Track.Kind.NEWSFLASH: ["news", "newsflash", "newsflashes", "מבזקים", "מבזק", "חדשות"],
}


def fold(name: str) -> str:
    # Hebrew geresh comes as ׳, ’ or ' depending on the keyboard.
    return re.sub(r"[׳’`´]", "'", name).strip().casefold()


KIND_BY_FOLDER = {fold(word): kind for kind, words in _KIND_WORDS.items() for word in words}
_BATCH = re.compile(r"^batch[\s_-]*(\d+)$|^מקבץ[\s_-]*(\d+)$", re.IGNORECASE)


# What the folders decide: the fields each kind takes from its folders, and what a field is
# when it does not apply (or applied before and no folder gives it any more).
FOLDER_FIELDS = ("kind", "genre", "artist", "show_name", "batch")
BLANK: dict[str, Any] = {"kind": Track.Kind.SONG, "genre": None, "artist": "", "show_name": "",
                         "batch": ""}
_KIND_FIELDS = {Track.Kind.SONG: {"genre", "artist"}, Track.Kind.SHOW: {"show_name"},
                Track.Kind.COMMERCIAL: {"batch"}}


def classify(parts: Sequence[str]) -> dict[str, Any]:
    """Hints from the folder names between the root and the file (root excluded)."""
    hints: dict[str, Any] = {}
    if not parts:
        return hints
    kind = KIND_BY_FOLDER.get(fold(parts[0]))
    if kind is None:
        return hints
    hints["kind"] = kind
    parts = list(parts)
    while len(parts) > 1 and KIND_BY_FOLDER.get(fold(parts[1])) == kind:
        del parts[1]  # Songs/שירים/…: the translation of the kind folder is transparent
    if kind == Track.Kind.SONG:
        if len(parts) > 1:
            hints["genre_name"] = display_text(parts[1])
        if len(parts) > 2:
            hints["artist"] = display_text(parts[2])
    elif kind == Track.Kind.SHOW and len(parts) > 1:
        hints["show_name"] = display_text(parts[1])
    elif kind == Track.Kind.COMMERCIAL and len(parts) > 1:
        match = _BATCH.match(parts[1].strip())
        hints["batch"] = f"Batch-{match.group(1) or match.group(2)}" if match else parts[1].strip()
    return hints


def apply_overrides(hints: dict[str, Any], chain: Iterable[DriveFolder]) -> dict[str, Any]:
    """Folder overrides from the admin, root first, so the deepest folder wins."""
    result = dict(hints)
    for folder in chain:
        if folder.kind_override:
            result["kind"] = folder.kind_override
        if folder.genre_override_id:
            result.pop("genre_name", None)
            result["genre_id"] = folder.genre_override_id
        if folder.artist_override:
            result["artist"] = folder.artist_override
        if folder.show_override:
            result["show_name"] = folder.show_override
        if folder.batch_override:
            result["batch"] = folder.batch_override
    return result


def resolve_genre(station, hints: dict[str, Any], genres: dict[str, Genre]) -> dict[str, Any]:
    """Turn genre_name/genre_id into a Genre, creating it once per station (cached in `genres`)."""
    result = {k: v for k, v in hints.items() if k not in ("genre_name", "genre_id")}
    if "genre_id" in hints:
        result["genre"] = Genre.objects.get(pk=hints["genre_id"])
    elif hints.get("genre_name"):
        key = hints["genre_name"].casefold()
        if key not in genres:
            genre = Genre.objects.filter(station=station, name__iexact=hints["genre_name"]).first()
            genres[key] = genre or Genre.objects.create(station=station, name=hints["genre_name"][:100])
        result["genre"] = genres[key]
    return result


def complete(hints: dict[str, Any]) -> dict[str, Any]:
    """Blank the folder fields the kind does not take (unless an override set them)."""
    kind = hints.get("kind")
    if kind is None:
        return hints  # no kind folder: nothing is known not to apply
    result = dict(hints)
    for name, blank in BLANK.items():
        if name not in result and name not in _KIND_FIELDS.get(kind, ()):
            result[name] = blank
    return result
