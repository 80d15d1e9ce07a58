"""Test session: a real PostgreSQL and a real Redis, started before Django loads.

They reach the settings through DATABASE_URL and REDIS_URL, exactly as in a
deployment; settings/test.py only turns speed knobs.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from tests.servers import PostgresServer, RedisServer

_servers: list = []


def pytest_configure(config: pytest.Config) -> None:
    postgres, redis_server = PostgresServer(), RedisServer()
    _servers.extend([postgres, redis_server])
    os.environ["DATABASE_URL"] = postgres.start()
    os.environ["REDIS_URL"] = redis_server.start()
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings.test"
    os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
    os.environ.setdefault("ONAIR_HTTPS", "false")
    os.environ["DB_CONN_MAX_AGE"] = "0"  # no connection outlives a request or a test
    # var/ (media cache, beat schedule) in a private folder, never the checkout's.
    os.environ["ONAIR_VAR_DIR"] = tempfile.mkdtemp(prefix="onair-var-")
    os.environ.setdefault("ONAIR_TOKEN_KEY", "7m0n7z4oGxN3n7oO3b0yQy3TQw6Q2bQ5cJ8Wb2a2dXM=")
    import django

    django.setup()
    # The shared fixtures import models, so they load once Django is set up.
    config.pluginmanager.import_plugin("tests.fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    while _servers:
        _servers.pop().stop()

