"""Signing in: Google (social-auth), sign-in throttling (django-axes) and API tokens."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from social_core.backends.google import GoogleOAuth2 as _GoogleOAuth2
from social_core.exceptions import AuthException

logger = logging.getLogger(__name__)


class GoogleOAuth2(_GoogleOAuth2):
    """social-core's Google backend; GOOGLE_OAUTH_ENDPOINT replaces Google's hosts.

    Production leaves the override empty and talks to Google. Tests point it at
    tests/fakes/ so the whole redirect → code → token → userinfo flow really runs.
    """

    def _endpoint(self, path: str, default: str) -> str:
        base = settings.GOOGLE_OAUTH_ENDPOINT
        return f"{base.rstrip('/')}{path}" if base else default

    def authorization_url(self) -> str:
        return self._endpoint("/o/oauth2/auth", super().authorization_url())

    def access_token_url(self) -> str:
        return self._endpoint("/o/oauth2/token", super().access_token_url())

    def revoke_token_url(self, token, uid) -> str:
        return self._endpoint("/o/oauth2/revoke", super().revoke_token_url(token, uid))

    def auth_url(self) -> str:
        key, secret = self.get_key_and_secret()
        if not (key and secret):
            raise AuthException(self, "Google sign-in is not configured on this station.")
        return super().auth_url()

    def user_data(self, access_token, *args, **kwargs):
        if not settings.GOOGLE_OAUTH_ENDPOINT:
            return super().user_data(access_token, *args, **kwargs)
        response = self.get_json(
            self._endpoint("/oauth2/v3/userinfo", ""),
            headers={"Authorization": f"Bearer {access_token}"},
        )
        self.validate_email_verified(response)
        return response


def record_sign_in(backend, user=None, is_new=False, *args, **kwargs):
    """Pipeline step: journal Google sign-ins; new users start with no station access."""
    from radio.services import audit_record

    if user is not None and is_new:
        audit_record(actor=user, station=None, action="user.created_by_google_sign_in", obj=user,
                     after={"username": user.get_username(), "email": user.email})
        logger.info("user=%s created by Google sign-in; no station access until granted", user.pk)


# --- Sign-in throttling (django-axes) ---------------------------------------

def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR.

    uvicorn runs with --proxy-headers, so behind the reverse proxy REMOTE_ADDR is
    already the client's address taken from X-Forwarded-For — and only when the
    proxy is one uvicorn trusts (FORWARDED_ALLOW_IPS). Reading X-Forwarded-For
    here would let any client pick the address it is throttled under.
    """
    return request.META.get("REMOTE_ADDR") or None


class SignInThrottleBackend(AxesStandaloneBackend):
    """Refuses sign-in for a locked-out account or client address (django-axes).

    A call without a request (a management command, a script, Django's test
    client `login()`) is not a sign-in from the web and is not throttled.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def signin_retry_after(request, username: str | None) -> int:
    """Seconds until the lock on this account or address ends (at least 1)."""
    from axes.helpers import get_cool_off
    from axes.models import AccessAttempt

    cool_off = get_cool_off(request) or timedelta(0)
    ip = getattr(request, "axes_ip_address", None) or client_ip(request)
    last = (AccessAttempt.objects.filter(Q(username=username) | Q(ip_address=ip))
            .aggregate(last=Max("attempt_time"))["last"])
    if last is None:
        return max(1, int(cool_off.total_seconds()))
    return max(1, math.ceil((last + cool_off - timezone.now()).total_seconds()))


def signin_locked_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many failed sign-in attempts: signing in is blocked for %(minutes)d minute. "
        "Try again later.",
        "Too many failed sign-in attempts: signing in is blocked for %(minutes)d minutes. "
        "Try again later.",
        minutes) % {"minutes": minutes}


def log_lockout(sender, request, username=None, ip_address=None, **kwargs) -> None:
    """Receiver of axes' user_locked_out: one line per lockout, for whoever watches the logs."""
    path = getattr(request, "path", "?") if request is not None else "?"
    if getattr(request, "axes_failures_since_start", None) is None:
        # axes sends the signal again for every try refused during the lock.
        logger.info("sign-in refused while locked: username=%r ip=%s path=%s", username, ip_address, path)
        return
    logger.warning("sign-in locked: username=%r ip=%s path=%s after %s failures, for %s",
                   username, ip_address, path, request.axes_failures_since_start,
                   settings.AXES_COOLOFF_TIME)


# --- API tokens ----------------------------------------------------------------

class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with tokens that expire API_TOKEN_TTL_DAYS after issue."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise AuthenticationFailed(_("Token expired: request a new one with POST /api/v1/auth/token."))
        return user, token


def token_expired(token: Token) -> bool:
    return token.created < timezone.now() - timedelta(days=settings.API_TOKEN_TTL_DAYS)


def token_issue(*, user) -> Token:
    """A new API token for `user`; the one it had stops working (rotation)."""
    with transaction.atomic():
        revoked = Token.objects.filter(user=user).delete()[0]
        token = Token.objects.create(user=user)
    logger.info("user=%s API token issued%s", user.pk, " (previous one revoked)" if revoked else "")
    return token


def revoke_tokens_on_password_change(sender, instance, raw=False, **kwargs) -> None:
    """pre_save receiver on the user model: a new password revokes the user's API tokens.

    Compares the stored hash, so every way of changing a password counts: the
    admin, `changepassword`, set_password() + save() in code.
    """
    if raw or instance.pk is None:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and "password" not in update_fields:
        return
    stored = type(instance).objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        revoked = Token.objects.filter(user_id=instance.pk).delete()[0]
        if revoked:
            logger.info("user=%s password changed: API token revoked", instance.pk)


def signin_succeeded(request, user) -> None:
    """A token issued for a password is a sign-in: last_login is set and axes clears the failures."""
    http_request = getattr(request, "_request", request)
    user_logged_in.send(sender=type(user), request=http_request, user=user)
