"""Playback admin: the queue, the as-run log (with CSV export), player commands, the emergency playlist.

All are `StationScopedAdmin`s: staff see their stations' rows; editors change them.
The queue, the log and the commands are written by the control page, the API and the
playback worker; here queued items can only be removed, through `queue_remove`, so the
removal is journaled and the worker and the control pages hear of it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Max, Min
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from library.admin import editable_stations, format_duration
from library.models import Track
from playback.models import EmergencyTrack, PlayerCommand, PlayLog, QueueItem
from playback.services import QueueError, QueueItemGone, playlog_csv_lines, queue_remove
from playback.views import as_run_filename, csv_response
from radio.admin import ReadOnlyAdminMixin, StationScopedAdmin
from radio.models import Station


class ReadOnlyAdmin(ReadOnlyAdminMixin, StationScopedAdmin):
    """Rows the system writes: members look, nobody edits here."""


@admin.register(QueueItem)
class QueueItemAdmin(StationScopedAdmin):
    list_display = ["station", "position", "track", "status", "reason", "requested_by", "created_at"]
    list_filter = ["status", "reason", ("station", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["station", "track", "requested_by"]
    ordering = ["station", "position", "id"]
    search_fields = ["track__title", "track__artist", "note"]

    # Items are added where their track is checked for air (control page, API, schedule, auto-DJ).
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status == QueueItem.Status.PLAYING:
            return False  # on air: skip it from the control page instead
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj) -> None:
        try:
            queue_remove(item=obj, actor=request.user)
        except QueueItemGone:
            pass  # removed (or played) a moment ago by someone else: what was asked is so
        except QueueError as exc:
            self.message_user(request, str(exc), messages.WARNING)

    def delete_queryset(self, request, queryset) -> None:
        kept = 0
        for item in queryset.filter(station__in=editable_stations(request.user)).select_related("station"):
            try:
                queue_remove(item=item, actor=request.user)
            except QueueItemGone:
                pass  # removed or played meanwhile: gone, as asked
            except QueueError:
                kept += 1
        if kept:
            self.message_user(request, ngettext(
                "%(count)d item is on air and was kept: skip it from the control page.",
                "%(count)d items are on air and were kept: skip them from the control page.",
                kept) % {"count": kept}, messages.WARNING)


@admin.register(PlayLog)
class PlayLogAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "station", "title", "artist", "kind", "played", "outcome", "reason",
                    "requested_by"]
    list_filter = ["outcome", "reason", "kind", ("station", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["station", "requested_by"]
    date_hierarchy = "started_at"
    search_fields = ["title", "artist", "note", "failure_reason"]
    actions = ["export_csv"]

    @admin.display(description=_("time played"), ordering="played_seconds")
    def played(self, log: PlayLog) -> str:
        return format_duration(log.played_seconds)

    @admin.action(description=_("Export selected as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        queryset = queryset.order_by("started_at", "id")
        stations = list(Station.objects.filter(pk__in=queryset.values("station_id"))[:2])
        bounds = queryset.aggregate(first=Min("started_at"), last=Max("started_at"))
        filename = (as_run_filename(stations[0], bounds["first"], bounds["last"]) if len(stations) == 1
                    else "as-run.csv")
        return csv_response(request, playlog_csv_lines(queryset), filename)


@admin.register(PlayerCommand)
class PlayerCommandAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "station", "action", "args", "status", "result", "requested_by",
                    "handled_at"]
    list_filter = ["action", "status", ("station", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["station", "requested_by"]
    date_hierarchy = "created_at"


class EmergencyTrackForm(forms.ModelForm):
    class Meta:
        model = EmergencyTrack
        fields = ["station", "track", "position"]

    def clean(self):
        data = super().clean()
        station, track = data.get("station"), data.get("track")
        if station is not None and track is not None and track.station_id != station.pk:
            self.add_error("track", _("This track belongs to another station."))
        return data


@admin.register(EmergencyTrack)
class EmergencyTrackAdmin(StationScopedAdmin):
    """What plays when nothing else can. Keep a few short, always-playable tracks here."""

    form = EmergencyTrackForm
    list_display = ["position", "track", "station", "playable"]
    list_display_links = ["track"]
    list_editable = ["position"]
    list_filter = [("station", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["station", "track"]
    ordering = ["station", "position", "id"]
    autocomplete_fields = ["track"]

    @admin.display(description=_("playable"), boolean=True)
    def playable(self, entry: EmergencyTrack) -> bool:
        return entry.track.is_playable

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "track" and not request.user.is_superuser:
            kwargs["queryset"] = Track.objects.filter(station__in=editable_stations(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
