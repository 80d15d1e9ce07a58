"""Server-rendered control pages. Access rules come from radio.services."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from library.models import Track
from playback.models import Reason
from playback.services import playback_snapshot
from radio.models import Notification, Role, Station
from radio.services import notification_post, request_role, role_at_least, role_of, stations_for

logger = logging.getLogger(__name__)

# The programme card: what starts in the next hours (station.js re-reads it over the same window).
PROGRAMME_HOURS = 24
PROGRAMME_ENTRIES = 6


class SignInView(auth_views.LoginView):
    template_name = "radio/login.html"
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    pass


class NoticeForm(forms.Form):
    message = forms.CharField(label=gettext_lazy("Message"), max_length=500)
    level = forms.ChoiceField(label=gettext_lazy("Level"), choices=Notification.Level.choices,
                              initial=Notification.Level.INFO)


def _member_station(request: HttpRequest, slug: str) -> tuple[Station, Role]:
    station = get_object_or_404(Station, slug=slug)
    role = request_role(request, station)  # one membership query per request
    if role is None:
        raise PermissionDenied(_("You are not a member of this station."))
    return station, role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    stations = [(s, role_of(request.user, s)) for s in stations_for(request.user)]
    if len(stations) == 1:
        return redirect("station", station_slug=stations[0][0].slug)
    return render(request, "radio/home.html", {"stations": stations})


def clock(seconds: float | None) -> str:
    """0:42, 3:07, 1:02:03 — as the control page's script writes them too."""
    if seconds is None:
        return "–:––"
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _on_air(status: dict[str, Any]) -> dict[str, Any] | None:
    """The now-playing card's first render (station.js keeps it current)."""
    current = status["current"]
    if not current:
        return None
    duration, position = current.get("duration"), current.get("position") or 0.0
    return {
        **current,
        "kind_label": Track.Kind(current["kind"]).label if current.get("kind") in Track.Kind.values else "",
        "reason_label": Reason(current["reason"]).label if current.get("reason") in Reason.values else "",
        "elapsed": clock(position),
        "remaining": "-" + clock(max(0.0, duration - position)) if duration else "",
        "percent": f"{min(100.0, 100.0 * position / duration):.1f}" if duration else "0",
    }


def _queue_rows(status: dict[str, Any]) -> list[dict[str, Any]]:
    """What waits, in play order (the item on air is on the now-playing card)."""
    rows = []
    for item in status["queue"]:
        if item.get("status") == "playing":
            continue
        track = item["track"]
        rows.append({**item, "index": len(rows), "duration": clock(track.get("duration")),
                     "kind_label": Track.Kind(track["kind"]).label,
                     "reason_label": Reason(item["reason"]).label})
    return rows


def _state(status: dict[str, Any]) -> str:
    if not status["worker"]["up"]:
        return "offline"
    if status["stopped"]:
        return "stopped"
    if status["paused"]:
        return "paused"
    return "playing" if status["is_playing"] else "idle"


def _programme(station: Station) -> dict[str, Any]:
    """The programme card's first render: the next starts, the events that cannot play and
    today's all-day notes, times in the station's zone (station.js keeps it current)."""
    now = timezone.now()
    try:
        from playback.schedule import timeline_data

        zone = ZoneInfo(station.time_zone)
        data = timeline_data(station, now, now + timedelta(hours=PROGRAMME_HOURS))
        today = timezone.localtime(now, zone).date()

        def when(start: str, end: str | None) -> dict[str, Any]:
            begins = datetime.fromisoformat(start)
            return {"start": begins, "end": datetime.fromisoformat(end) if end else None,
                    "day": (timezone.localtime(begins, zone).date() - today).days}  # 1: tomorrow

        return {
            "time_zone": zone,
            "entries": [{**e, **when(e["start"], e["end"])} for e in data["entries"]
                        if datetime.fromisoformat(e["end"]) > now][:PROGRAMME_ENTRIES],
            "unresolved": [{**e, **when(e["starts_at"], e["ends_at"])} for e in data["unresolved"]
                           if e["starts_at"]],
            # All-day notes: today's, those under way now.
            "notes": [n for n in data["notes"]
                      if n["starts_at"] and datetime.fromisoformat(n["starts_at"]) <= now
                      and (not n["ends_at"] or datetime.fromisoformat(n["ends_at"]) > now)],
        }
    except Exception:  # noqa: BLE001 - the card only: the rest of the page must still render
        logger.warning("station=%s programme card not built", station.slug, exc_info=True)
        return {"time_zone": "UTC", "entries": [], "unresolved": [], "notes": []}


@login_required
def station_page(request: HttpRequest, station_slug: str) -> HttpResponse:
    station, role = _member_station(request, station_slug)
    status = playback_snapshot(station)
    queue = _queue_rows(status)
    context = {
        "station": station,
        "role": role,
        "can_edit": role_at_least(role, Role.EDITOR),
        "status": status,
        "state": _state(status),
        "on_air": _on_air(status),
        "queue": queue,
        "last_index": len(queue) - 1,
        "programme": _programme(station),
        # For station.js: choice labels in the page's language.
        "labels": {"kind": {k: str(v) for k, v in Track.Kind.choices},
                   "reason": {k: str(v) for k, v in Reason.choices}},
        "notifications": station.notifications.select_related("created_by")[:20],
        "notice_form": NoticeForm(),
    }
    return render(request, "radio/station.html", context)


@login_required
@require_POST
def station_notice(request: HttpRequest, station_slug: str) -> HttpResponse:
    station, role = _member_station(request, station_slug)
    if not role_at_least(role, Role.EDITOR):
        raise PermissionDenied(_("Posting notices needs the editor role."))
    form = NoticeForm(request.POST)
    if form.is_valid():
        notification_post(station=station, actor=request.user, **form.cleaned_data)
        messages.success(request, _("Notice posted."))
    else:
        messages.error(request, _("The notice was not posted: %(errors)s")
                       % {"errors": "; ".join(e for errs in form.errors.values() for e in errs)})
    return redirect("station", station_slug=station.slug)
