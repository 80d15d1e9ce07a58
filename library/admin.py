"""Library admin: curate tracks, genres and Drive folders (sync runs: radio/admin.py).

Every admin here is a `StationScopedAdmin`: staff see only their stations' rows and
may change them only as editors there. Hand edits of a track go through
`track_update`, so they are journaled and pinned against later syncs.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from library.models import DriveFolder, Genre, Playlist, PlaylistItem, Track
from library.serializers import cue_errors
from library.services import track_enqueue_analysis, track_update
from radio.admin import StationScopedAdmin
from radio.models import Role, Station
from radio.services import has_role, stations_for

logger = logging.getLogger(__name__)


def editable_stations(user) -> QuerySet[Station]:
    """Stations where the user may change things (editor or admin)."""
    if user.is_superuser:
        return Station.objects.all()
    return Station.objects.filter(memberships__user=user,
                                  memberships__role__in=[Role.EDITOR, Role.ADMIN]).distinct()


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LibraryAdmin(StationScopedAdmin):
    """Genre choices limited to the user's stations; bulk deletes journaled one by one."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Genre and not request.user.is_superuser:
            kwargs["queryset"] = Genre.objects.filter(station__in=stations_for(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if stations_for(request.user).count() > 1:
            filters.append(("station", admin.RelatedOnlyFieldListFilter))
        return filters

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset.filter(station__in=editable_stations(request.user)):
            self.delete_model(request, obj)

    def _limit_genres(self, form, field: str, station: Station | None) -> None:
        if station is not None and field in form.base_fields:
            form.base_fields[field].queryset = Genre.objects.filter(station=station)


# --- Tracks -------------------------------------------------------------------

class MissingFilter(admin.SimpleListFilter):
    title = _("missing")
    parameter_name = "missing"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(missing_since__isnull=self.value() == "no")
        return queryset


class DownloadFailedFilter(admin.SimpleListFilter):
    """Tracks whose file Drive would not give us (the reason is on the track)."""

    title = _("download failed")
    parameter_name = "download_failed"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(download_error="")
        if self.value() == "no":
            return queryset.filter(download_error="")
        return queryset


class DuplicateFilter(admin.SimpleListFilter):
    """Tracks with a twin on the same station; the list is then sorted so twins sit together."""

    title = _("duplicates")
    parameter_name = "duplicates"
    ORDERING = {"same_file": ["checksum", "id"], "likely": ["dedupe_key", "id"]}

    def lookups(self, request, model_admin):
        return [("same_file", _("Same file")), ("likely", _("Same artist and title"))]

    def queryset(self, request, queryset):
        if self.value() == "same_file":
            twin = Track.objects.filter(station=OuterRef("station"), checksum=OuterRef("checksum"))
            return queryset.exclude(checksum="").filter(Exists(twin.exclude(pk=OuterRef("pk"))))
        if self.value() == "likely":
            twin = Track.objects.filter(station=OuterRef("station"), dedupe_key=OuterRef("dedupe_key"))
            return queryset.exclude(dedupe_key="|").filter(Exists(twin.exclude(pk=OuterRef("pk"))))
        return queryset


class TrackAdminForm(forms.ModelForm):
    class Meta:
        model = Track
        fields = list(Track.EDITABLE_FIELDS)

    def clean(self):
        cleaned = super().clean()
        errors = cue_errors(cleaned.get("cue_in"), cleaned.get("cue_out"), self.instance.duration)
        for field, message in errors.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        genre = cleaned.get("genre")
        if genre is not None and genre.station_id != self.instance.station_id:
            self.add_error("genre", _("Choose a genre of this track's station."))
        return cleaned


class KindChoiceForm(forms.Form):
    value = forms.ChoiceField(label=_("Kind"), choices=Track.Kind.choices)


def genre_choice_form(station: Station) -> type[forms.Form]:
    class GenreChoiceForm(forms.Form):
        value = forms.ModelChoiceField(label=_("Genre"), queryset=Genre.objects.filter(station=station),
                                       required=False, empty_label=_("(no genre)"))

    return GenreChoiceForm


@admin.register(Track)
class TrackAdmin(LibraryAdmin):
    form = TrackAdminForm
    list_display = ["title", "artist", "kind", "genre", "duration_display", "enabled", "is_missing",
                    "analysis", "source", "cover_thumbnail"]
    list_select_related = ["genre", "station"]
    search_fields = ["title", "artist", "album"]
    list_filter = ["kind", ("genre", admin.RelatedOnlyFieldListFilter), "enabled", MissingFilter,
                   "source", "language", "analysis", DownloadFailedFilter, DuplicateFilter]
    actions = ["enable", "disable", "set_kind", "set_genre", "reanalyse", "retry_download"]
    readonly_fields = [
        "station", "audio_preview", "cover_preview", "duration", "loudness_lufs", "true_peak_dbtp",
        "analysis", "analysis_error", "source", "source_id", "source_path", "source_parent",
        "source_modified", "missing_since", "file", "file_checksum", "checksum", "size", "bitrate",
        "sample_rate", "mime_type", "cover", "play_count", "last_played_at", "edited_fields",
        "created_at", "updated_at", "download_error", "download_failures", "download_retry_at",
    ]
    fieldsets = [
        (None, {"fields": ["station", "kind", "title", "artist", "album", "genre", "year",
                           "language", "show_name", "batch", "enabled"]}),
        (_("Playback"), {"fields": ["audio_preview", "cue_in", "cue_out", "duration", "loudness_lufs",
                                    "true_peak_dbtp", "analysis", "analysis_error"]}),
        (_("Cover art"), {"fields": ["cover_preview", "cover"]}),
        (_("Source"), {"fields": ["source", "source_id", "source_path", "source_parent",
                                  "source_modified", "missing_since"]}),
        (_("Download"), {"fields": ["download_error", "download_failures", "download_retry_at"]}),
        (_("File"), {"classes": ["collapse"],
                     "fields": ["file", "file_checksum", "checksum", "size", "bitrate", "sample_rate",
                                "mime_type"]}),
        (_("History"), {"fields": ["play_count", "last_played_at", "edited_fields", "created_at",
                                   "updated_at"]}),
    ]

    change_list_template = "admin/library/track/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False  # tracks arrive by Drive sync, Gmail, upload (below) or folder import

    def get_urls(self):
        from library.admin_upload import upload_view

        def view(request):
            return upload_view(self, request, editable_stations(request.user))

        return [path("upload/", self.admin_site.admin_view(view), name="library_track_upload"),
                *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}),
                         "can_upload": editable_stations(request.user).exists()}
        return super().changelist_view(request, extra_context)

    def get_ordering(self, request):
        return DuplicateFilter.ORDERING.get(request.GET.get(DuplicateFilter.parameter_name),
                                            super().get_ordering(request))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        self._limit_genres(form, "genre", obj.station if obj is not None else None)
        return form

    def save_model(self, request, obj, form, change) -> None:
        if not has_role(request.user, obj.station, Role.EDITOR):
            raise PermissionDenied
        data = {f: form.cleaned_data[f] for f in form.changed_data if f in Track.EDITABLE_FIELDS}
        if data:
            # From the stored row, so the journal's "before" is what it was.
            track_update(actor=request.user, track=Track.objects.get(pk=obj.pk), data=data)

    # -- columns and previews --

    def _api_url(self, obj: Track, name: str) -> str:
        return reverse(name, kwargs={"station_slug": obj.station.slug, "pk": obj.pk})

    @admin.display(description=_("duration"), ordering="duration")
    def duration_display(self, obj: Track) -> str:
        return format_duration(obj.duration)

    @admin.display(description=_("missing"), boolean=True, ordering="missing_since")
    def is_missing(self, obj: Track) -> bool:
        return obj.missing_since is not None

    @admin.display(description=_("cover"))
    def cover_thumbnail(self, obj: Track) -> str:
        if not obj.cover:
            return ""
        return format_html('<img src="{}" alt="" loading="lazy" width="32" height="32" '
                           'style="object-fit:cover">', self._api_url(obj, "track-cover"))

    @admin.display(description=_("listen"))
    def audio_preview(self, obj: Track) -> str:
        if obj.pk is None or not obj.file:
            return _("No cached file yet.")
        return format_html('<audio controls preload="none" src="{}"></audio>',
                           self._api_url(obj, "track-audio"))

    @admin.display(description=_("cover art"))
    def cover_preview(self, obj: Track) -> str:
        if obj.pk is None or not obj.cover:
            return "—"
        return format_html('<img src="{}" alt="" style="max-width:240px;max-height:240px">',
                           self._api_url(obj, "track-cover"))

    # -- bulk actions --

    def _bulk_update(self, request, queryset, data: dict) -> None:
        tracks = list(queryset.filter(station__in=editable_stations(request.user))
                      .select_related("station"))
        for track in tracks:
            track_update(actor=request.user, track=track, data=data)
        self.message_user(request, ngettext("%(count)d track changed.", "%(count)d tracks changed.",
                                            len(tracks)) % {"count": len(tracks)}, messages.SUCCESS)

    @admin.action(description=_("Enable selected tracks"), permissions=["change"])
    def enable(self, request, queryset):
        self._bulk_update(request, queryset, {"enabled": True})

    @admin.action(description=_("Disable selected tracks"), permissions=["change"])
    def disable(self, request, queryset):
        self._bulk_update(request, queryset, {"enabled": False})

    def _choose_then_update(self, request, queryset, *, field: str, title: str,
                            form_class: type[forms.Form]):
        """An intermediate page asks for the value; its submit comes back to the same action."""
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                self._bulk_update(request, queryset, {field: form.cleaned_data["value"]})
                return None
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "title": title, "form": form,
            "tracks": queryset[:20], "count": queryset.count(),
            "action": request.POST.get("action", ""),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/library/track/bulk_set.html", context)

    @admin.action(description=_("Set kind…"), permissions=["change"])
    def set_kind(self, request, queryset):
        return self._choose_then_update(request, queryset, field="kind", title=_("Set kind"),
                                        form_class=KindChoiceForm)

    @admin.action(description=_("Set genre…"), permissions=["change"])
    def set_genre(self, request, queryset):
        station_ids = set(queryset.values_list("station_id", flat=True))
        if len(station_ids) != 1:
            self.message_user(request, _("Select tracks of one station to set their genre."),
                              messages.ERROR)
            return None
        station = Station.objects.get(pk=station_ids.pop())
        return self._choose_then_update(request, queryset, field="genre", title=_("Set genre"),
                                        form_class=genre_choice_form(station))

    @admin.action(description=_("Re-analyse audio"), permissions=["change"])
    def reanalyse(self, request, queryset):
        ids = list(queryset.filter(station__in=editable_stations(request.user))
                   .values_list("pk", flat=True))
        for track_id in ids:
            track_enqueue_analysis(track_id)
        self.message_user(request, ngettext("%(count)d track queued for analysis.",
                                            "%(count)d tracks queued for analysis.",
                                            len(ids)) % {"count": len(ids)}, messages.SUCCESS)

    @admin.action(description=_("Retry download now"), permissions=["change"])
    def retry_download(self, request, queryset):
        from kombu.exceptions import OperationalError as BrokerError

        from library.downloads import tracks_download_retry_now
        from library.tasks import drive_sync_request

        queryset = queryset.filter(station__in=editable_stations(request.user))
        stations = list(Station.objects.filter(pk__in=queryset.exclude(download_error="")
                                               .values("station_id")))
        count = tracks_download_retry_now(actor=request.user, tracks=queryset)
        try:
            for station in stations:
                drive_sync_request(station=station, actor=request.user)
        except BrokerError:
            logger.exception("downloads marked for retry but no sync queued: broker unavailable")
            self.message_user(request, _("The task queue is unavailable: the downloads are tried at "
                                         "the next scheduled sync."), messages.WARNING)
        self.message_user(request, ngettext(
            "%(count)d track will be downloaded again at the sync now queued.",
            "%(count)d tracks will be downloaded again at the sync now queued.",
            count) % {"count": count}, messages.SUCCESS)


# --- Genres and Drive folders ---------------------------------------------------

@admin.register(Genre)
class GenreAdmin(LibraryAdmin):
    list_display = ["name", "station", "track_count", "created_at"]
    search_fields = ["name"]
    fields = ["station", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(track_count=Count("tracks"))

    def get_readonly_fields(self, request, obj=None):
        return ["station"] if obj is not None else []

    @admin.display(description=_("tracks"), ordering="track_count")
    def track_count(self, obj: Genre) -> int:
        return obj.track_count


class DriveFolderForm(forms.ModelForm):
    class Meta:
        model = DriveFolder
        fields = ["station", "folder_id", "name", "is_root", "kind_override", "genre_override",
                  "artist_override", "show_override", "batch_override"]

    def clean(self):
        cleaned = super().clean()
        genre = cleaned.get("genre_override")
        station = cleaned.get("station") or getattr(self.instance, "station", None)
        if genre is not None and station is not None and genre.station_id != station.pk:
            self.add_error("genre_override", _("Choose a genre of this folder's station."))
        return cleaned


@admin.register(DriveFolder)
class DriveFolderAdmin(LibraryAdmin):
    form = DriveFolderForm
    list_display = ["name", "folder_id", "station", "is_root", "kind_override", "genre_override",
                    "artist_override", "show_override", "batch_override", "trashed"]
    list_filter = ["is_root", "trashed", "kind_override"]
    search_fields = ["name", "folder_id"]
    fieldsets = [
        (None, {"fields": ["station", "folder_id", "name", "is_root", "parent_id", "trashed"]}),
        (_("Overrides (win over the folder conventions)"),
         {"fields": ["kind_override", "genre_override", "artist_override", "show_override",
                     "batch_override"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The Drive id of a known folder is fixed; a new watched root is added by its id.
        return ["station", "folder_id", "parent_id", "trashed"] if obj else ["parent_id", "trashed"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        self._limit_genres(form, "genre_override", obj.station if obj is not None else None)
        return form



# --- Playlists ------------------------------------------------------------------

class PlaylistItemInline(admin.TabularInline):
    model = PlaylistItem
    extra = 0
    fields = ["position", "track"]
    raw_id_fields = ["track"]


@admin.register(Playlist)
class PlaylistAdmin(LibraryAdmin):
    """Static playlists list their tracks (in the order of `position`); smart ones are a saved filter."""

    list_display = ["name", "station", "kind", "order", "item_count", "updated_at"]
    list_filter = ["kind", "order"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["genres"]
    inlines = [PlaylistItemInline]
    fieldsets = [
        (None, {"fields": ["station", "name", "slug", "kind", "order"]}),
        (_("Smart playlist rules (each rule set must hold)"), {"fields": [
            "kinds", "genres", "artists", "language", ("year_from", "year_to"),
            ("min_seconds", "max_seconds"), "not_aired_hours", "limit"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items"))

    @admin.display(description=_("tracks"), ordering="item_count")
    def item_count(self, obj: Playlist) -> int:
        return obj.item_count


from library import admin_gmail  # noqa: E402,F401
