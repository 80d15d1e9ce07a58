"""Track search: one normalised column, a trigram index on PostgreSQL, exact and prefix matches first.

`Track.search_text` holds title, artist and album, each through `search_normalise()` (case folded,
niqqud, cantillation and accents stripped, bidi marks dropped, punctuation to spaces) and joined
by SEPARATOR, which no normalised field can hold. A search normalises its words the same way,
so "Beyoncé", "beyonce" and "BEYONCE" meet, and so do "שָׁלוֹם" and "שלום".

Every word must appear (as DRF's SearchFilter did, on any of the three fields): one
`search_text LIKE '%word%'` per word, or for a word of one or two letters, which holds no
trigram, a word starting with it. On PostgreSQL a GIN index with `gin_trgm_ops` answers these
(migration 0005 creates it; pg_trgm is a trusted extension since PostgreSQL 13). The embedded
SQLite runs the same query without that index, scanning the station's tracks: slower, fine
at a single station's size.
"""

from __future__ import annotations

import re
import unicodedata

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Length

SEPARATOR = "\n"
MAX_QUERY_CHARS = 200
TRIGRAM = 3

# Quote-like marks vanish inside a word, so "Don't" meets "dont" and "צה״ל" meets "צהל".
_QUOTES = re.compile("['\"`´‘’“”׳״]")
_NOT_A_WORD = re.compile(r"[\W_]+")


def search_normalise(text: str | None) -> str:
    """Text as search compares it: case folded, no marks, no bidi controls, words split by single spaces."""
    text = unicodedata.normalize("NFKD", text or "")
    # Mn: niqqud, cantillation and the accents NFKD split off; Cf: bidi marks and other invisibles.
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Cf")).casefold()
    text = _NOT_A_WORD.sub(" ", _QUOTES.sub("", text))
    return " ".join(text.split())


def track_search_text(title: str, artist: str, album: str) -> str:
    """The value of `Track.search_text`."""
    return SEPARATOR.join(search_normalise(part) for part in (title, artist, album))


def search_words(query: str) -> list[str]:
    return search_normalise(query).split()


def word_matches(word: str) -> Q:
    """A word of three letters or more anywhere; a shorter one at the start of a word.

    `LIKE '%ab%'` holds no trigram, so no index can serve it and every row would be read;
    `LIKE '% ab%'` holds the trigrams of a word start ("  a", " ab"), which the index serves.
    """
    if len(word) >= TRIGRAM:
        return Q(search_text__contains=word)
    return (Q(search_text__startswith=word) | Q(search_text__contains=" " + word)
            | Q(search_text__contains=SEPARATOR + word))


def track_search(queryset: QuerySet, query: str) -> QuerySet:
    """Tracks holding every word of `query` in their title, artist or album, best matches first.

    The order: a field equal to the whole query, then a field starting with it, then a word
    starting with it, then the rest; within each, the shorter text (the closer match), then
    title. A query with no words (only punctuation) filters nothing.
    """
    words = search_words(query)
    if not words:
        return queryset
    for word in words:
        queryset = queryset.filter(word_matches(word))
    phrase = " ".join(words)
    rank = Case(
        When(Q(search_text__startswith=phrase + SEPARATOR)
             | Q(search_text__contains=SEPARATOR + phrase + SEPARATOR)
             | Q(search_text__endswith=SEPARATOR + phrase), then=Value(0)),
        When(Q(search_text__startswith=phrase) | Q(search_text__contains=SEPARATOR + phrase), then=Value(1)),
        When(search_text__contains=" " + phrase, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    # Within a rank the shorter text first: for text holding the whole phrase that is what
    # trigram similarity measures, at a fraction of the cost (similarity() over 10,000
    # matches took 75 ms, length() 2 ms).
    return queryset.annotate(search_rank=rank, search_length=Length("search_text")).order_by(
        "search_rank", "search_length", "title", "pk")
