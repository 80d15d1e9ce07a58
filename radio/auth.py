"""Google sign-in (social-auth) with an endpoint override for the local fake server."""

from __future__ import annotations

import logging

from django.conf import settings
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
