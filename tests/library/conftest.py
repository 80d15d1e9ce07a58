"""Library fixtures: the fake Google server wired into settings, a connected station, audio bytes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from tests.fakes.google import FakeGoogle

# Models are imported inside fixtures: this conftest loads before Django is set up.


@pytest.fixture
def fake_google(settings):
    fake = FakeGoogle().start()
    settings.GOOGLE_API_ENDPOINT = fake.url
    settings.GOOGLE_OAUTH_ENDPOINT = fake.url
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "client-id"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "client-secret"
    settings.GOOGLE_API_RETRIES = 3
    yield fake
    fake.stop()


@pytest.fixture
def connected_station(station, fake_google):
    """The station with an admin-connected Google account (encrypted refresh token)."""
    from radio.google import SCOPES, encrypt_token
    from radio.models import GoogleCredential

    GoogleCredential.objects.create(
        station=station, email="studio@kol.fm", scopes=SCOPES,
        refresh_token_encrypted=encrypt_token(fake_google.issue_refresh_token()))
    return station


@pytest.fixture
def drive_root(connected_station, fake_google):
    from library.models import DriveFolder

    root_id = fake_google.drive.add_folder("OnAir Library")
    DriveFolder.objects.create(station=connected_station, folder_id=root_id, is_root=True)
    return root_id


@pytest.fixture(scope="session")
def base_mp3(tmp_path_factory) -> bytes:
    """Half a second of real MP3 audio (no tags)."""
    out = tmp_path_factory.mktemp("audio") / "base.mp3"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=0.5", "-ac", "2", "-b:a", "64k",
                    "-map_metadata", "-1", "-id3v2_version", "0", "-write_xing", "0", str(out)],
                   check=True)
    return out.read_bytes()


@pytest.fixture
def mp3(base_mp3):
    """mp3(title, artist="") → unique MP3 bytes carrying an ID3v1 tag."""

    def make(title: str, artist: str = "") -> bytes:
        def field(text: str, size: int) -> bytes:
            return text.encode("latin-1", "replace")[:size].ljust(size, b"\0")

        tag = b"TAG" + field(title, 30) + field(artist, 30) + field("", 30) + b"2024" + \
            field("", 30) + b"\xff"
        return base_mp3 + tag

    return make


def cached_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]
