"""Test settings: the production module with faster knobs.

The test session (tests/conftest.py) starts a private PostgreSQL and Redis and
passes them in through DATABASE_URL and REDIS_URL like any deployment would.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-" + "x" * 50)

from settings.base import *  # noqa: E402,F403
from settings.env import env_float  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PLAYBACK_HEARTBEAT_SECONDS = 0.2
# A test that needs a longer stale age for its subprocesses sets the variable.
PLAYBACK_STALE_SECONDS = env_float("PLAYBACK_STALE_SECONDS", 2.0, minimum=1.0)
CELERY_HEARTBEAT_SECONDS = 0.5
CELERY_STALE_SECONDS = 3.0
