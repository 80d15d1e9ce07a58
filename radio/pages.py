"""Server-rendered control pages. Access rules come from radio.services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from playback.services import playback_snapshot
from radio.models import Notification, Role, Station
from radio.services import has_role, notification_post, role_of, stations_for


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
    role = role_of(request.user, station)
    if role is None:
        raise PermissionDenied(_("You are not a member of this station."))
    return station, role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    stations = [(s, role_of(request.user, s)) for s in stations_for(request.user)]
    if len(stations) == 1:
        return redirect("station", station_slug=stations[0][0].slug)
    return render(request, "radio/home.html", {"stations": stations})


@login_required
def station_page(request: HttpRequest, station_slug: str) -> HttpResponse:
    station, role = _member_station(request, station_slug)
    context = {
        "station": station,
        "role": role,
        "can_edit": has_role(request.user, station, Role.EDITOR),
        "status": playback_snapshot(station),
        "notifications": station.notifications.select_related("created_by")[:20],
        "notice_form": NoticeForm(),
    }
    return render(request, "radio/station.html", context)


@login_required
@require_POST
def station_notice(request: HttpRequest, station_slug: str) -> HttpResponse:
    station, _role = _member_station(request, station_slug)
    if not has_role(request.user, station, Role.EDITOR):
        raise PermissionDenied(_("Posting notices needs the editor role."))
    form = NoticeForm(request.POST)
    if form.is_valid():
        notification_post(station=station, actor=request.user, **form.cleaned_data)
        messages.success(request, _("Notice posted."))
    else:
        messages.error(request, _("The notice was not posted: %(errors)s")
                       % {"errors": "; ".join(e for errs in form.errors.values() for e in errs)})
    return redirect("station", station_slug=station.slug)
