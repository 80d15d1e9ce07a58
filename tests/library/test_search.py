"""Track search: indexed on PostgreSQL, Hebrew and English alike, best matches first, a capped count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from library.drive import drive_sync_run
from library.models import Genre, Track
from library.search import search_normalise
from library.services import track_update
from radio.models import Role

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def tracks_url(station) -> str:
    return f"/api/v1/stations/{station.slug}/tracks"


@pytest.fixture
def viewer_client(api_client, station, make_user):
    api_client.force_authenticate(make_user(Role.VIEWER, station))
    return api_client


def make_track(station, title: str, artist: str = "", album: str = "", **fields) -> Track:
    fields.setdefault("source", Track.Source.UPLOAD)
    return Track.objects.create(station=station, title=title, artist=artist, album=album, **fields)


def bulk_tracks(station, rows, genre=None) -> None:
    """Many tracks at once, with their derived columns, as the Drive sync writes them."""
    tracks = []
    for title, artist, album in rows:
        track = Track(station=station, source=Track.Source.UPLOAD, title=title, artist=artist,
                      album=album, genre=genre)
        track.derive_keys()
        tracks.append(track)
    Track.objects.bulk_create(tracks, batch_size=2000)


def titles(client, station, **params) -> list[str]:
    response = client.get(tracks_url(station), params)
    assert response.status_code == 200, response.json()
    return [t["title"] for t in response.json()["results"]]


def track_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if '"library_track"' in q["sql"]]


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


# --- matching ------------------------------------------------------------------

def test_normalising_drops_case_niqqud_accents_bidi_marks_and_punctuation():
    assert search_normalise("שָׁלוֹם עֲלֵיכֶם") == "שלום עליכם"
    assert search_normalise("\u200fשיר\u200f  ישן") == "שיר ישן"
    assert search_normalise("Beyoncé – CRAZY in Love!") == "beyonce crazy in love"
    assert search_normalise("צה״ל") == search_normalise('צה"ל') == "צהל"
    assert search_normalise("Don’t Stop") == "dont stop"
    assert search_normalise("AC/DC") == "ac dc"


def test_hebrew_and_english_are_found_ignoring_case_niqqud_and_accents(viewer_client, station,
                                                                        other_station):
    make_track(station, "שָׁלוֹם עֲלֵיכֶם", artist="מקהלת הגבעטרון")
    make_track(station, "Crazy in Love", artist="Beyoncé", album="Dangerously in Love")
    make_track(station, "Highway to Hell", artist="AC/DC")
    make_track(station, "להקת צה״ל", album="\u200fשירי הלהקות\u200f")
    make_track(station, "Yerushalayim Shel Zahav", artist="Naomi Shemer")
    make_track(other_station, "שלום עליכם", artist="Beyonce")

    assert titles(viewer_client, station, search="שלום") == ["שָׁלוֹם עֲלֵיכֶם"]
    assert titles(viewer_client, station, search="עֲלֵיכֶם") == ["שָׁלוֹם עֲלֵיכֶם"]
    assert titles(viewer_client, station, search="גבעטרון") == ["שָׁלוֹם עֲלֵיכֶם"]  # artist
    assert titles(viewer_client, station, search="BEYONCE") == ["Crazy in Love"]
    assert titles(viewer_client, station, search="beyoncé") == ["Crazy in Love"]
    assert titles(viewer_client, station, search="dangerously") == ["Crazy in Love"]  # album
    assert titles(viewer_client, station, search="ac/dc") == ["Highway to Hell"]
    assert titles(viewer_client, station, search='צה"ל') == ["להקת צה״ל"]
    assert titles(viewer_client, station, search="הלהקות") == ["להקת צה״ל"]  # bidi marks ignored
    # Every word, each in any field (title + artist here), as DRF's search did.
    assert titles(viewer_client, station, search="zahav naomi") == ["Yerushalayim Shel Zahav"]
    assert titles(viewer_client, station, search="zahav beyonce") == []
    # A word of one or two letters matches the start of a word, where an index can serve it.
    assert titles(viewer_client, station, search="hi") == ["Highway to Hell"]
    assert titles(viewer_client, station, search="ig") == []
    assert titles(viewer_client, station, search="?!") != []  # no words: no filter


def test_edits_and_drive_syncs_keep_the_search_column_current(viewer_client, station, editor_of,
                                                              connected_station, drive_root,
                                                              fake_google, mp3):
    track = make_track(station, "Old Name", artist="Somebody")
    track_update(actor=editor_of(station), track=track, data={"title": "שם חדש"})
    assert titles(viewer_client, station, search="חדש") == ["שם חדש"]
    assert titles(viewer_client, station, search="old") == []

    # The Drive sync writes with bulk_create and bulk_update, which skip Track.save().
    drive = fake_google.drive
    pop = drive.add_folder("Pop", drive.add_folder("Songs", drive_root))
    song = drive.add_file("Waterloo.mp3", drive.add_folder("ABBA", pop), mp3("Waterloo"))
    assert drive_sync_run(station=connected_station).status == "ok"
    assert titles(viewer_client, station, search="abba") == ["Waterloo"]
    drive.move(song, drive.add_folder("Queen", pop))  # the folder names the artist
    assert drive_sync_run(station=connected_station).status == "ok"
    assert Track.objects.get(source_id=song).artist == "Queen"
    assert titles(viewer_client, station, search="queen") == ["Waterloo"]
    assert titles(viewer_client, station, search="abba") == []


@pytest.fixture
def editor_of(make_user):
    return lambda station: make_user(Role.EDITOR, station)


# --- ranking -------------------------------------------------------------------

def test_exact_matches_come_first_then_prefixes_then_word_starts_then_the_rest(viewer_client, station):
    make_track(station, "Glove Box")  # contains "love"
    make_track(station, "Endless Love Song")  # a word starts with it
    make_track(station, "Lovely Day")  # the title starts with it
    make_track(station, "Songs", artist="Lovers Rock")  # the artist starts with it
    make_track(station, "Zzz", album="Love")  # a field is exactly it
    make_track(station, "LOVE")  # the title is exactly it

    assert titles(viewer_client, station, search="love") == [
        "LOVE", "Zzz", "Lovely Day", "Songs", "Endless Love Song", "Glove Box"]
    # An explicit ordering wins over relevance.
    assert titles(viewer_client, station, search="love", ordering="title") == [
        "Endless Love Song", "Glove Box", "LOVE", "Lovely Day", "Songs", "Zzz"]


def test_ranking_holds_for_hebrew_with_niqqud(viewer_client, station):
    make_track(station, "בוקר של אהבה")  # a word starts with it
    make_track(station, "אהבה")  # the title is exactly it (without niqqud)
    make_track(station, "אהבת נעורים")  # the title starts with "אהב" only: no match for "אהבה"
    make_track(station, "אהבה ראשונה")  # the title starts with it

    assert titles(viewer_client, station, search="אַהֲבָה") == ["אהבה", "אהבה ראשונה", "בוקר של אהבה"]


# --- the count -----------------------------------------------------------------

def test_count_stops_at_1000_and_every_page_stays_reachable(viewer_client, station):
    bulk_tracks(station, [(f"Night Song {n}", "", "") for n in range(1200)])

    with CaptureQueriesContext(connection) as captured:
        response = viewer_client.get(tracks_url(station), {"search": "night"})
    data = response.json()
    assert (data["count"], data["count_capped"], len(data["results"])) == (1000, True, 50)
    assert "page=2" in data["next"]
    queries = track_queries(captured)
    assert len(queries) == 3  # the capped count, the page's ids, the page's rows
    counts = [q for q in queries if "COUNT(" in q.upper()]
    assert len(counts) == 1 and "LIMIT 1001" in counts[0]
    assert "ORDER BY" not in counts[0]  # a count needs no ranking
    assert all("LIMIT" in q or "IN (" in q for q in queries)  # nothing unbounded

    # Past the cap the count reaches one page beyond the page asked for, so `next` is right.
    page_21 = viewer_client.get(tracks_url(station), {"search": "night", "page": 21}).json()
    assert (page_21["count"], page_21["count_capped"], len(page_21["results"])) == (1100, True, 50)
    assert "page=22" in page_21["next"]
    last = viewer_client.get(tracks_url(station), {"search": "night", "page": 24}).json()
    assert (last["count"], last["count_capped"], last["next"]) == (1200, False, None)
    assert len(last["results"]) == 50
    assert viewer_client.get(tracks_url(station), {"search": "night", "page": 25}).status_code == 404
    assert viewer_client.get(tracks_url(station), {"page": 10**30}).status_code == 404

    small = viewer_client.get(tracks_url(station), {"search": "night song 11"}).json()
    # "11" is short, so it starts a word: 11, 110…119, 1100…1199. Exact below the cap.
    assert (small["count"], small["count_capped"]) == (111, False)


def test_search_text_over_200_characters_is_a_400(viewer_client, station):
    response = viewer_client.get(tracks_url(station), {"search": "a" * 201})
    assert response.status_code == 400
    assert "search" in response.json()


# --- the indexes ---------------------------------------------------------------

def test_search_and_genre_lists_use_indexes_on_a_large_library(viewer_client, station, other_station):
    rock, jazz = (Genre.objects.create(station=station, name=n) for n in ("Rock", "Jazz"))
    words = ["love", "night", "river", "אהבה", "לילה", "נהר", "ירושלים", "dream"]
    for genre, half in ((rock, 0), (jazz, 1)):
        bulk_tracks(station, [(f"{words[n % 8]} {words[(n // 8) % 8]} {half}-{n}", f"Artist {n % 500}",
                               f"Album {n % 900}") for n in range(10_000)], genre=genre)
    bulk_tracks(other_station, [(f"Other {n}", "", "") for n in range(2000)])
    make_track(station, "נְשִׁיקָה אחרונה", artist="Rare")
    make_track(station, "Xylophone Blues", artist="Rare")
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load (VACUUM cannot run in the test's transaction):
        # move the GIN index's pending list of fresh entries into the index, and gather statistics.
        cursor.execute("SELECT gin_clean_pending_list('track_search_trgm')")
        cursor.execute("ANALYZE library_track")

    for query in ("0-4242", "נשיקה", "xylophone blues", "river 4242"):
        with CaptureQueriesContext(connection) as captured:
            found = titles(viewer_client, station, search=query)
        assert found, query
        for sql in track_queries(captured)[:2]:  # the count and the page's ids
            explained = plan(sql)
            assert "track_search_trgm" in explained, explained
            assert "Seq Scan on library_track" not in explained, explained

    with CaptureQueriesContext(connection) as captured:
        assert len(titles(viewer_client, station, genre=jazz.pk, ordering="title")) == 50
    explained = plan(track_queries(captured)[1])
    assert "track_station_genre_title" in explained and "Sort" not in explained, explained

    with CaptureQueriesContext(connection) as captured:
        assert len(titles(viewer_client, station)) == 50  # the default order: artist, title
    explained = plan(track_queries(captured)[1])
    assert "track_station_artist_title" in explained and "Sort" not in explained, explained


# --- the embedded default --------------------------------------------------------

def test_embedded_sqlite_migrates_without_the_trigram_index_and_still_searches(tmp_path):
    """The embedded default (no DATABASE_URL: SQLite): migration 0005 skips the PostgreSQL-only
    extension and index, and the same search runs, unindexed, through the API."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    (tmp_path / "var").mkdir()
    env.update(ONAIR_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="settings.test",
               ALLOWED_HOSTS="testserver", ONAIR_HTTPS="false")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    script = """
import json
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient
from library.models import Track
from radio.models import Membership, Station
station, _ = Station.objects.get_or_create(slug="kol", defaults={"name": "Kol"})
for title, artist in [("שָׁלוֹם", "Arik"), ("Lovely Day", "Bill"), ("LOVE", "X"), ("Glove", "Y")]:
    Track.objects.create(station=station, title=title, artist=artist, source="upload")
user = get_user_model().objects.create_user("viewer")
Membership.objects.create(user=user, station=station, role="viewer")
client = APIClient()
client.force_authenticate(user)
def search(text):
    data = client.get("/api/v1/stations/kol/tracks", {"search": text}).json()
    return [t["title"] for t in data["results"]], data["count"], data["count_capped"]
with connection.cursor() as cursor:
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'library_track'")
    indexes = [row[0] for row in cursor.fetchall()]
print(json.dumps({"vendor": connection.vendor, "hebrew": search("שלום"), "love": search("love"),
                  "indexes": indexes}))
"""
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["vendor"] == "sqlite"
    assert result["hebrew"] == [["שָׁלוֹם"], 1, False]
    assert result["love"] == [["LOVE", "Lovely Day", "Glove"], 3, False]
    assert "track_search_trgm" not in result["indexes"]
    assert "track_station_genre_title" in result["indexes"]
