"""Upload audio from the admin: the same import pipeline as the API and folder import."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from library.models import Genre, Track
from library.services import ImportRejected, track_import_file, upload_limit_bytes
from radio.models import Role, Station
from radio.services import has_role


class UploadForm(forms.Form):
    station = forms.ModelChoiceField(label=gettext_lazy("Station"), queryset=Station.objects.none())
    file = forms.FileField(label=gettext_lazy("Audio file"))
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Track.Kind.choices,
                             initial=Track.Kind.SONG)
    genre = forms.ModelChoiceField(label=gettext_lazy("Genre"), queryset=Genre.objects.none(),
                                   required=False)

    def __init__(self, *args, stations, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = stations
        self.fields["genre"].queryset = Genre.objects.filter(station__in=stations).select_related("station")
        if stations.count() == 1:
            self.fields["station"].initial = stations.first()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > upload_limit_bytes():
            raise forms.ValidationError(_("The file is larger than the upload limit of %(limit)s.")
                                        % {"limit": filesizeformat(upload_limit_bytes())})
        return upload

    def clean(self):
        cleaned = super().clean()
        genre, station = cleaned.get("genre"), cleaned.get("station")
        if genre is not None and station is not None and genre.station_id != station.pk:
            self.add_error("genre", _("This genre belongs to another station."))
        return cleaned


def upload_view(model_admin, request, stations):
    """GET: the form. POST: import the file and open the new track."""
    if not stations.exists():
        raise PermissionDenied
    form = UploadForm(request.POST or None, request.FILES or None, stations=stations)
    if request.method == "POST" and form.is_valid():
        station = form.cleaned_data["station"]
        if not has_role(request.user, station, Role.EDITOR):
            raise PermissionDenied
        upload = form.cleaned_data["file"]
        hints = {"kind": form.cleaned_data["kind"]}
        if form.cleaned_data["genre"] is not None:
            hints["genre"] = form.cleaned_data["genre"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(upload.name).name
            with open(path, "wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            try:
                track = track_import_file(station=station, path=path, source=Track.Source.UPLOAD,
                                          original_name=upload.name, hints=hints, actor=request.user)
            except ImportRejected as exc:
                form.add_error("file", str(exc))
            else:
                model_admin.message_user(request, _("“%(track)s” uploaded; analysis is running.")
                                         % {"track": track}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:library_track_change", args=[track.pk]))
    context = {**model_admin.admin_site.each_context(request), "form": form,
               "title": _("Upload audio"), "opts": model_admin.model._meta}
    return TemplateResponse(request, "admin/library/track/upload.html", context)
