"""An admin connects a Google account for a station: OAuth consent → encrypted refresh token."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from radio.google import SCOPES, encrypt_token, token_uri
from radio.models import GoogleCredential, Role, Station
from radio.services import audit_record, has_role

logger = logging.getLogger(__name__)

GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_USERINFO_URL = "https://www.googleapis.com/oauth2/v3/userinfo"


def _auth_url() -> str:
    base = settings.GOOGLE_OAUTH_ENDPOINT
    return f"{base.rstrip('/')}/o/oauth2/auth" if base else GOOGLE_AUTH_URL


def _userinfo_url() -> str:
    base = settings.GOOGLE_OAUTH_ENDPOINT
    return f"{base.rstrip('/')}/oauth2/v3/userinfo" if base else GOOGLE_USERINFO_URL


def _callback(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("google-connect-callback"))


@staff_member_required
def connect_start(request: HttpRequest, station_slug: str) -> HttpResponse:
    station = get_object_or_404(Station, slug=station_slug)
    if not has_role(request.user, station, Role.ADMIN):
        raise PermissionDenied
    if not (settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY and settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET):
        messages.error(request, _("Set GOOGLE_OAUTH_CLIENT_ID and GOOGLE_OAUTH_CLIENT_SECRET first."))
        return redirect("admin:radio_googlecredential_changelist")
    state = secrets.token_urlsafe(24)
    request.session["google_connect"] = {"state": state, "station": station.slug}
    params = {"client_id": settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY, "redirect_uri": _callback(request),
              "response_type": "code", "scope": " ".join(["openid", "email", *SCOPES]),
              "access_type": "offline", "prompt": "consent", "state": state}
    return redirect(f"{_auth_url()}?{urlencode(params)}")


@staff_member_required
def connect_callback(request: HttpRequest) -> HttpResponse:
    pending = request.session.pop("google_connect", None)
    back = redirect("admin:radio_googlecredential_changelist")
    if not pending or not secrets.compare_digest(pending["state"], request.GET.get("state", "")):
        messages.error(request, _("The Google connection expired or was tampered with; try again."))
        return back
    station = get_object_or_404(Station, slug=pending["station"])
    if not has_role(request.user, station, Role.ADMIN):
        raise PermissionDenied
    if "error" in request.GET or "code" not in request.GET:
        messages.error(request, _("Google did not grant access: %(error)s")
                       % {"error": request.GET.get("error", "no code")})
        return back
    try:
        tokens = requests.post(token_uri(), timeout=30, data={
            "code": request.GET["code"], "client_id": settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY,
            "client_secret": settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET,
            "redirect_uri": _callback(request), "grant_type": "authorization_code"})
        tokens.raise_for_status()
        token_data = tokens.json()
        profile = requests.get(_userinfo_url(), timeout=30,
                               headers={"Authorization": f"Bearer {token_data['access_token']}"})
        profile.raise_for_status()
    except (requests.RequestException, KeyError, ValueError) as exc:
        logger.warning("station=%s google connect failed: %s", station.slug, exc)
        messages.error(request, _("Google did not complete the connection: %(error)s") % {"error": exc})
        return back
    refresh = token_data.get("refresh_token")
    if not refresh:
        messages.error(request, _("Google sent no refresh token; remove OnAir's access in your Google "
                                  "account settings and connect again."))
        return back
    email = profile.json().get("email", "")
    with transaction.atomic():
        GoogleCredential.objects.update_or_create(station=station, defaults={
            "email": email, "scopes": SCOPES, "refresh_token_encrypted": encrypt_token(refresh),
            "connected_by": request.user})
        audit_record(actor=request.user, station=station, action="google.connect", obj=station,
                     after={"email": email})
    messages.success(request, _("Google account %(email)s connected to %(station)s.")
                     % {"email": email, "station": station.name})
    return back
