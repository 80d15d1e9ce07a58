"""Access to Google APIs for a station: credentials, encryption of stored tokens, clients.

Credentials come from a service-account key file (GOOGLE_SERVICE_ACCOUNT_FILE) or
from an OAuth refresh token an admin connected for the station, stored encrypted
with ONAIR_TOKEN_KEY. GOOGLE_API_ENDPOINT aims the real client at another server
(the tests' fake Google): the client then fetches that server's discovery
document, so every URL, uploads included, goes there over plain HTTP.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import google_auth_httplib2
import httplib2
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from google.oauth2 import credentials as oauth_credentials
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

logger = logging.getLogger(__name__)

SCOPES = [
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/calendar.readonly",
    # Write-back of programme slots as managed events (only for calendars that ask for it).
    "https://www.googleapis.com/auth/calendar.events",
]
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class GoogleNotConfigured(Exception):
    """No way to reach Google for this station: says what a person must do."""


def _fernet() -> Fernet:
    key = settings.ONAIR_TOKEN_KEY
    if not key:
        raise ImproperlyConfigured(
            "ONAIR_TOKEN_KEY is required to store Google tokens: generate one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        )
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("ONAIR_TOKEN_KEY is not a valid Fernet key.") from exc


def encrypt_token(token: str) -> str:
    return _fernet().encrypt(token.encode()).decode()


def decrypt_token(blob: str) -> str:
    try:
        return _fernet().decrypt(blob.encode()).decode()
    except InvalidToken as exc:
        raise GoogleNotConfigured(
            "The stored Google token cannot be decrypted (was ONAIR_TOKEN_KEY changed?): "
            "reconnect Google in the admin."
        ) from exc


def token_uri() -> str:
    if settings.GOOGLE_OAUTH_ENDPOINT:
        return settings.GOOGLE_OAUTH_ENDPOINT.rstrip("/") + "/o/oauth2/token"
    return GOOGLE_TOKEN_URI


def station_credentials(station) -> Any:
    """The credentials a station's syncs use; raises GoogleNotConfigured with a next step."""
    from radio.models import GoogleCredential

    connected = GoogleCredential.objects.filter(station=station).first()
    if connected is not None:
        return oauth_credentials.Credentials(
            token=None,
            refresh_token=decrypt_token(connected.refresh_token_encrypted),
            client_id=settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY,
            client_secret=settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET,
            token_uri=token_uri(),
            scopes=connected.scopes or SCOPES,
        )
    if settings.GOOGLE_SERVICE_ACCOUNT_FILE:
        creds = service_account.Credentials.from_service_account_file(
            settings.GOOGLE_SERVICE_ACCOUNT_FILE, scopes=SCOPES)
        # Gmail (and a user's own Drive) need domain-wide delegation to act as a user.
        return creds.with_subject(settings.GOOGLE_SERVICE_ACCOUNT_SUBJECT) \
            if settings.GOOGLE_SERVICE_ACCOUNT_SUBJECT else creds
    raise GoogleNotConfigured(
        f"Station {station.slug} has no Google access: set GOOGLE_SERVICE_ACCOUNT_FILE or "
        "connect a Google account in the admin (Google connections)."
    )


def google_service(api: str, version: str, credentials: Any):
    """A google-api-python-client Resource for `api`/`version` with a request timeout."""
    raw = httplib2.Http(timeout=settings.GOOGLE_API_TIMEOUT)
    # Resumable uploads answer each chunk "308 Resume Incomplete" without a Location:
    # not a redirect (googleapiclient.http.build_http does the same).
    raw.redirect_codes = raw.redirect_codes - {308}
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=raw)
    if settings.GOOGLE_API_ENDPOINT:
        base = settings.GOOGLE_API_ENDPOINT.rstrip("/")
        return build(api, version, http=http, static_discovery=False, cache_discovery=False,
                     discoveryServiceUrl=f"{base}/discovery/v1/apis/{{api}}/{{apiVersion}}/rest")
    return build(api, version, http=http, static_discovery=True, cache_discovery=False)


def google_execute(request, run) -> dict[str, Any]:
    """Run one Google API request for a sync run, counting it in `run.requests`.

    google-api-python-client (2.202, googleapiclient.http._retry_request and
    _should_retry_response) retries, up to `num_retries` times with exponential
    backoff and random jitter (sleep random()·2^n s): 5xx, 429, a 403 whose first
    `error.errors[].reason` is `userRateLimitExceeded` or `rateLimitExceeded` (the
    way Drive, Gmail and Calendar say "slow down"), socket time-outs, resets and
    SSL errors. A rate limit that outlasts the retries is raised as its HttpError;
    `is_rate_limit` tells it from an access problem (radio/sync.py reports it as a
    rate limit and the run is queued again later). A response cut short
    (http.client.IncompleteRead) is not retried by the client: it is raised.
    """
    run.requests += 1
    return request.execute(num_retries=settings.GOOGLE_API_RETRIES)


# --- What an HttpError means --------------------------------------------------------
# Google answers {"error": {"code": 403, "message": "...", "errors": [{"domain":
# "usageLimits", "reason": "userRateLimitExceeded", "message": "..."}]}}; newer APIs
# also carry "status" ("RESOURCE_EXHAUSTED") and "details" with an ErrorInfo reason.

RATE_LIMIT_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
QUOTA_REASONS = {"dailyLimitExceeded", "quotaExceeded", "dailyLimitExceededUnreg"}


def error_reasons(exc: HttpError) -> set[str]:
    """Every `reason` (and the `status`) Google put in an error body."""
    try:
        error = json.loads(exc.content.decode("utf-8"))["error"]
    except (AttributeError, KeyError, TypeError, ValueError):
        return set()
    if not isinstance(error, dict):
        return set()
    reasons = {item.get("reason") for key in ("errors", "details")
               for item in (error.get(key) or []) if isinstance(item, dict)}
    reasons.add(error.get("status"))
    return {reason for reason in reasons if isinstance(reason, str) and reason}


def is_rate_limit(exc: HttpError) -> bool:
    """429, or a 403 that says "rate limit" (not a permission problem)."""
    status = exc.resp.status
    return status == 429 or (status == 403 and bool(error_reasons(exc) & RATE_LIMIT_REASONS))


def is_quota_exhausted(exc: HttpError) -> bool:
    return exc.resp.status in (403, 429) and bool(error_reasons(exc) & QUOTA_REASONS)


def error_message(exc: HttpError) -> str:
    """Google's own words for the error (its first detail's message, else the top one)."""
    try:
        details = exc.error_details
        if isinstance(details, list) and details and isinstance(details[0], dict) \
                and details[0].get("message"):
            return str(details[0]["message"])
        return exc.reason or str(exc)
    except (AttributeError, IndexError, KeyError, TypeError):
        return str(exc)
