"""What a calendar event asks for (scheduling/directives.py): pure rules, no database."""

from __future__ import annotations

import pytest

from scheduling.directives import Directive, description_text, parse_event


def test_onair_properties_name_the_content_and_how_it_starts():
    d = parse_event(description=None, private={"onair_content_id": "42", "onair_kind": "song",
                                               "onair_mode": "hard", "onair_fill": "none"})
    assert d == Directive(kind="song", ref="42", mode="hard", fill="none", source="properties")
    assert d.ok


def test_the_seed_systems_properties_are_understood():
    d = parse_event(description="", private={"radio_content_id": "1AbCdriveId", "radio_content_type": "jingle"})
    assert (d.kind, d.ref, d.mode, d.fill, d.ok) == ("jingle", "1AbCdriveId", None, None, True)


def test_onair_keys_win_over_the_seed_systems():
    d = parse_event(description=None, private={"onair_content_id": "7", "onair_kind": "playlist",
                                               "radio_content_id": "9", "radio_content_type": "song"})
    assert (d.kind, d.ref) == ("playlist", "7")


@pytest.mark.parametrize(("text", "kind", "ref"), [
    ("play: track 123", "track", "123"),
    ("Play: Playlist Morning Drive", "playlist", "Morning Drive"),
    ("play: genre Jazz", "genre", "Jazz"),
    ("play: show Boker Tov Israel", "show", "Boker Tov Israel"),
    ("נגן: פלייליסט בוקר טוב", "playlist", "בוקר טוב"),
    ("נגן: ז'אנר מזרחית", "genre", "מזרחית"),
    ("נגן: תוכנית שעת ספורט", "show", "שעת ספורט"),
])
def test_a_description_line_says_what_to_play_in_english_or_hebrew(text, kind, ref):
    d = parse_event(description=f"Weekly show\n{text}\nhosted by Dana", private=None)
    assert (d.kind, d.ref, d.source, d.ok) == (kind, ref, "description", True)


def test_html_descriptions_from_the_calendar_web_ui_read_like_plain_text():
    raw = ("<p>Morning show</p><p>play:&nbsp;playlist <b>Boker&nbsp;Tov</b></p>"
           "mode: hard<br>fill: none<br/>")
    assert description_text(raw).splitlines()[1] == "play: playlist Boker Tov"
    d = parse_event(description=raw, private=None)
    assert (d.kind, d.ref, d.mode, d.fill) == ("playlist", "Boker Tov", "hard", "none")


def test_hebrew_mode_and_fill_and_bidi_marks_are_ignored():
    d = parse_event(description="\u200fנגן: שיר 55\nמצב: רך\nמילוי: ללא", private=None)
    assert (d.kind, d.ref, d.mode, d.fill, d.ok) == ("song", "55", "soft", "none", True)


def test_properties_say_what_and_the_description_how():
    d = parse_event(description="mode: hard", private={"onair_content_id": "5", "onair_kind": "show"})
    assert (d.kind, d.ref, d.mode) == ("show", "5", "hard")
    d = parse_event(description="play: playlist Drive", private={"onair_mode": "soft"})
    assert (d.kind, d.ref, d.mode, d.source) == ("playlist", "Drive", "soft", "properties+description")


@pytest.mark.parametrize(("description", "private", "says"), [
    ("play: podcast 5", None, "unknown content kind 'podcast'"),
    ("play: playlist", None, "playlist without a name or id"),
    ("mode: sometimes\nplay: song 4", None, "'sometimes' is not hard or soft"),
    ("fill: lots\nplay: song 4", None, "'lots' is not rotation or none"),
    (None, {"onair_content_id": "5"}, "content id without a kind"),
    (None, {"onair_kind": "song"}, "song: no content id"),
    (None, {"onair_content_id": "5", "onair_kind": "cartoon"}, "unknown content kind 'cartoon'"),
    (None, {"onair_content_id": "5", "onair_kind": "song", "onair_mode": "loud"}, "unknown mode 'loud'"),
])
def test_what_cannot_be_understood_comes_back_flagged_with_the_reason(description, private, says):
    d = parse_event(description=description, private=private)
    assert not d.ok and says in d.error


def test_an_event_that_asks_for_nothing_is_no_directive_and_no_error():
    d = parse_event(description="Staff meeting in studio 2", private={"other": "x"})
    assert d == Directive() and not d.ok and d.error == ""
