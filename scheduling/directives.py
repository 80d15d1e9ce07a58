"""What a calendar event asks the station to play: a pure rule, no database.

An event says it in its `extendedProperties.private` — OnAir's keys (`onair_content_id`,
`onair_kind`, `onair_mode`, `onair_fill`) or the seed system's (`radio_content_id`,
`radio_content_type`) — or in its description, one directive per line:

    play: track <id>          נגן: שיר <id>
    play: playlist <name>     נגן: פלייליסט <name>
    play: genre <name>        נגן: ז'אנר <name>
    play: show <name>         נגן: תוכנית <name>
    mode: hard | soft         מצב: קשיח | רך
    fill: rotation | none     מילוי: רוטציה | ללא

Descriptions come from Google as plain text or HTML (the Calendar web UI writes HTML:
`<br>`, `<p>`, `&nbsp;`, links); both are read the same way. Properties win over the
description, OnAir's keys over the seed system's. What cannot be understood is returned as
a `Directive` with `error` set (kept and flagged by the caller, never dropped).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# What an event may name, and the kinds that name a track (song, jingle, …).
TRACK_KINDS = ("song", "jingle", "commercial", "newsflash", "sample")
CONTENT_KINDS = (*TRACK_KINDS, "track", "show", "playlist", "flow", "genre")
MODES = ("hard", "soft")
FILLS = ("rotation", "none")

# Keywords, English and Hebrew, to their canonical form.
_KEYS = {"play": "play", "נגן": "play", "mode": "mode", "מצב": "mode", "fill": "fill", "מילוי": "fill"}
_KINDS = {
    "track": "track", "song": "song", "jingle": "jingle", "commercial": "commercial",
    "newsflash": "newsflash", "sample": "sample", "show": "show", "playlist": "playlist",
    "flow": "flow", "genre": "genre",
    "רצועה": "track", "שיר": "song", "ג'ינגל": "jingle", "גינגל": "jingle", "פרסומת": "commercial",
    "מבזק": "newsflash", "תוכנית": "show", "פלייליסט": "playlist", "רשימה": "playlist",
    "זרימה": "flow", "ז'אנר": "genre", "זאנר": "genre", "סגנון": "genre",
}
_VALUES = {"hard": "hard", "soft": "soft", "קשיח": "hard", "רך": "soft",
           "rotation": "rotation", "none": "none", "רוטציה": "rotation", "ללא": "none"}

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/li)\s*/?\s*>", re.IGNORECASE)
_LINE = re.compile(r"^\s*([^\s:：]+)\s*[:：]\s*(.*?)\s*$")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Directive:
    """What to play: `kind` and `ref` (an id or a name, as written), how it starts, and fill."""
    kind: str | None = None
    ref: str = ""
    mode: str | None = None  # None: the station's default
    fill: str | None = None  # None: the station's default (rotation)
    source: str = ""  # "properties", "description", or "" when the event said nothing
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.kind is not None


def description_text(description: str | None) -> str:
    """An event description as plain text lines, whether Google gave plain text or HTML."""
    text = description or ""
    if "<" in text and ">" in text:
        text = _BREAK.sub("\n", text)
        text = _TAG.sub("", text)
    text = html.unescape(text).replace("\xa0", " ")
    return _BIDI.sub("", text)


def _canon_kind(word: str) -> str | None:
    return _KINDS.get(word.strip().casefold())


def _from_properties(private: dict[str, str]) -> Directive | None:
    ref = (private.get("onair_content_id") or private.get("radio_content_id") or "").strip()
    raw_kind = (private.get("onair_kind") or private.get("radio_content_type") or "").strip()
    mode_raw = (private.get("onair_mode") or "").strip()
    fill_raw = (private.get("onair_fill") or "").strip()
    if not (ref or raw_kind or mode_raw or fill_raw):
        return None
    mode = _VALUES.get(mode_raw.casefold()) if mode_raw else None
    fill = _VALUES.get(fill_raw.casefold()) if fill_raw else None
    if mode_raw and mode not in MODES:
        return Directive(source="properties", error=f"unknown mode {mode_raw!r} (hard or soft)")
    if fill_raw and fill not in FILLS:
        return Directive(source="properties", error=f"unknown fill {fill_raw!r} (rotation or none)")
    if not ref and not raw_kind:  # only how, not what: the description may say what
        return Directive(mode=mode, fill=fill, source="properties")
    kind = _canon_kind(raw_kind) if raw_kind else None
    if kind is None:
        reason = f"unknown content kind {raw_kind!r}" if raw_kind else "content id without a kind"
        return Directive(mode=mode, fill=fill, source="properties", error=reason)
    if not ref:
        return Directive(kind=kind, mode=mode, fill=fill, source="properties",
                         error=f"{kind}: no content id")
    return Directive(kind=kind, ref=ref, mode=mode, fill=fill, source="properties")


def _from_description(text: str) -> Directive | None:
    kind = ref = None
    mode = fill = None
    errors: list[str] = []
    seen = False
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        key = _KEYS.get(match.group(1).casefold())
        if key is None:
            continue
        seen = True
        value = match.group(2)
        if key == "play":
            word, _, rest = value.partition(" ")
            kind = _canon_kind(word)
            ref = rest.strip()
            if kind is None:
                errors.append(f"play: unknown content kind {word!r}")
            elif not ref:
                errors.append(f"play: {kind} without a name or id")
        elif key == "mode":
            mode = _VALUES.get(value.strip().casefold())
            if mode not in MODES:
                errors.append(f"mode: {value.strip()!r} is not hard or soft")
                mode = None
        elif key == "fill":
            fill = _VALUES.get(value.strip().casefold())
            if fill not in FILLS:
                errors.append(f"fill: {value.strip()!r} is not rotation or none")
                fill = None
    if not seen:
        return None
    return Directive(kind=kind, ref=ref or "", mode=mode, fill=fill, source="description",
                     error="; ".join(errors))


def parse_event(*, description: str | None, private: dict[str, str] | None) -> Directive:
    """The directive of one event. Properties say what and how; a description fills what
    the properties leave out (typically mode or fill). No directive at all: `kind` None, no error
    (an event staff keep as a note; the caller decides)."""
    from_props = _from_properties(private or {})
    from_text = _from_description(description_text(description))
    if from_props is None and from_text is None:
        return Directive()
    if from_props is None:
        return from_text
    if from_props.error or from_text is None:
        return from_props
    if from_props.kind is None:  # properties gave only mode/fill
        return Directive(kind=from_text.kind, ref=from_text.ref, mode=from_props.mode or from_text.mode,
                         fill=from_props.fill or from_text.fill, source="properties+description",
                         error=from_text.error)
    return Directive(kind=from_props.kind, ref=from_props.ref, mode=from_props.mode or from_text.mode,
                     fill=from_props.fill or from_text.fill, source="properties")
