"""Scheduling fixtures: playable tracks as the playback tests make them."""

from tests.playback.conftest import make_playable, tone_file  # noqa: F401 - fixtures
