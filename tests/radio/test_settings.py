"""Settings come from the environment and a bad value stops start-up with a clear message."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from settings import env
from tests.fixtures import ROOT


def _load_settings(**overrides: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environ.update(DJANGO_SETTINGS_MODULE="settings.base", **overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environ, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not valid"),
        ("TIME_ZONE", "Mars/Olympus", "TIME_ZONE='Mars/Olympus' is not valid"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL='localhost:6379' is not valid"),
        ("PLAYBACK_HEARTBEAT_SECONDS", "fast", "PLAYBACK_HEARTBEAT_SECONDS='fast' is not valid"),
        ("DATABASE_URL", "mongodb://x/y", "DATABASE_URL is not valid"),
    ],
)
def test_bad_environment_value_stops_start_up_naming_the_variable(name, value, says):
    result = _load_settings(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert says in result.stderr


def test_production_database_without_secret_key_is_refused():
    result = _load_settings(DATABASE_URL="postgres://u@127.0.0.1/db", SECRET_KEY="",
                            ALLOWED_HOSTS="radio.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_database_without_allowed_hosts_is_refused():
    result = _load_settings(DATABASE_URL="postgres://u@127.0.0.1/db", SECRET_KEY="k" * 60,
                            ALLOWED_HOSTS="")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is required" in result.stderr


def test_check_deploy_is_clean_with_production_values():
    environ = {k: v for k, v in os.environ.items() if k not in ("ONAIR_HTTPS",)}
    environ.update(
        DJANGO_SETTINGS_MODULE="settings.base",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="radio.example.org",
        DEBUG="false",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=environ, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_typed_helpers_parse_good_values_and_reject_bad_ones(monkeypatch):
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_INT", "7")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env.env_bool("X_BOOL") is True
    assert env.env_int("X_INT", minimum=1) == 7
    assert env.env_list("X_LIST") == ["a", "b", "c"]
    assert env.env_int("X_UNSET", 3) == 3
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="X_INT='0' is not valid: expected a whole number >= 1"):
        env.env_int("X_INT", minimum=1)
    with pytest.raises(ImproperlyConfigured, match="X_REQUIRED is required"):
        env.env_str("X_REQUIRED")
