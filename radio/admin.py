"""Admin for stations and access. Staff see and change only what their roles allow.

`StationScopedAdmin` is the base for every station-owned model in the admin: it
filters rows to the user's stations and maps view/add/change/delete to the
user's role there, instead of Django's global model permissions.
"""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from radio.models import (
    ROLE_RANK,
    AuditEntry,
    GoogleCredential,
    Membership,
    Notification,
    Role,
    Station,
    SyncRun,
    WorkerHeartbeat,
)
from radio.services import (
    audit_record,
    has_role,
    membership_remove,
    membership_set,
    snapshot,
    stations_for,
)
from radio.sync import SyncNotQueued, sync_now

logger = logging.getLogger(__name__)


def _best_role(user) -> Role | None:
    if user.is_superuser:
        return Role.ADMIN
    roles = [Role(r) for r in user.memberships.values_list("role", flat=True)]
    return max(roles, key=ROLE_RANK.get) if roles else None


class StationScopedAdmin(admin.ModelAdmin):
    station_path = "station"  # lookup from the model to its Station
    view_role = Role.VIEWER
    edit_role = Role.EDITOR

    def _station_of(self, obj) -> Station:
        for part in self.station_path.split("__"):
            obj = getattr(obj, part)
        return obj

    def get_queryset(self, request) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.station_path}__in": stations_for(request.user)})

    def _allowed(self, request, obj, role: Role) -> bool:
        if not request.user.is_active or not request.user.is_staff:
            return False
        if obj is None:
            best = _best_role(request.user)
            return best is not None and ROLE_RANK[best] >= ROLE_RANK[role]
        return has_role(request.user, self._station_of(obj), role)

    def has_module_permission(self, request) -> bool:
        return self._allowed(request, None, self.view_role)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj, self.view_role)

    def has_add_permission(self, request) -> bool:
        return self._allowed(request, None, self.edit_role)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj, self.edit_role)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj, self.edit_role)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Station and not request.user.is_superuser:
            kwargs["queryset"] = Station.objects.filter(
                memberships__user=request.user,
                memberships__role__in=[r for r in Role if ROLE_RANK[r] >= ROLE_RANK[self.edit_role]],
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        if not has_role(request.user, self._station_of(obj), self.edit_role):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        before = snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        audit_record(actor=request.user, station=self._station_of(obj),
                     action=f"{obj._meta.model_name}.{'change' if change else 'add'}",
                     obj=obj, before=before, after=snapshot(obj))

    def delete_model(self, request, obj) -> None:
        audit_record(actor=request.user, station=self._station_of(obj),
                     action=f"{obj._meta.model_name}.delete", obj=obj, before=snapshot(obj))
        super().delete_model(request, obj)


class ReadOnlyAdminMixin:
    """Rows the system writes (journals, logs, runs): people look, nobody edits here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    """Roles on the station; only its admins see or change them."""

    model = Membership
    extra = 1

    def _is_station_admin(self, request, station) -> bool:
        if station is None:
            # Asked without a station when the inline builds its queryset (which the
            # formset then limits to the station on the page): "admin of any station".
            # Answering superusers-only here emptied it, so station admins could add
            # roles but never change or remove one.
            return request.user.is_superuser or _best_role(request.user) == Role.ADMIN
        return has_role(request.user, station, Role.ADMIN)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._is_station_admin(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._is_station_admin(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._is_station_admin(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._is_station_admin(request, obj)


@admin.register(Station)
class StationAdmin(StationScopedAdmin):
    station_path = "pk"
    edit_role = Role.ADMIN
    list_display = ["name", "slug", "time_zone", "language", "output"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def _station_of(self, obj) -> Station:
        return obj

    def get_queryset(self, request):
        return stations_for(request.user)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def save_model(self, request, obj, form, change) -> None:
        if not change and request.user.is_superuser:
            admin.ModelAdmin.save_model(self, request, obj, form, change)
            audit_record(actor=request.user, station=obj, action="station.add", obj=obj,
                         after=snapshot(obj))
            return
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change) -> None:
        # Role changes made in the inline go through the same service as the API.
        station = form.instance
        instances = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership_remove(actor=request.user, membership=membership)
        for membership in instances:
            membership_set(actor=request.user, station=station, user=membership.user,
                           role=membership.role)


@admin.register(Notification)
class NotificationAdmin(StationScopedAdmin):
    list_display = ["created_at", "station", "level", "message", "source", "created_by"]
    list_filter = ["level", "source", "station"]
    search_fields = ["message"]
    readonly_fields = ["source", "created_by", "created_at"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, StationScopedAdmin):
    view_role = Role.ADMIN
    list_display = ["created_at", "station", "actor_repr", "action", "object_repr"]
    list_filter = ["action", "object_type", "station"]
    search_fields = ["actor_repr", "object_repr", "action"]
    date_hierarchy = "created_at"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["key", "owner", "started_at", "beat_at", "stopped_at"]
    readonly_fields = [f.name for f in WorkerHeartbeat._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- Google access and sync runs ---------------------------------------------------

@admin.register(GoogleCredential)
class GoogleCredentialAdmin(StationScopedAdmin):
    view_role = Role.ADMIN
    edit_role = Role.ADMIN
    list_display = ["station", "email", "connected_by", "connected_at", "reconnect"]
    readonly_fields = ["station", "email", "scopes", "connected_by", "connected_at"]
    exclude = ["refresh_token_encrypted"]  # never shown, even encrypted
    change_list_template = "admin/radio/googlecredential/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("connect"))
    def reconnect(self, obj):
        return format_html('<a href="{}">{}</a>',
                           reverse("google-connect", args=[obj.station.slug]), _("Reconnect"))

    def changelist_view(self, request, extra_context=None):
        stations = [s for s in stations_for(request.user) if has_role(request.user, s, Role.ADMIN)]
        extra_context = {**(extra_context or {}), "connect_stations": stations}
        return super().changelist_view(request, extra_context)


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdminMixin, StationScopedAdmin):
    """Read-only history of Drive, Gmail and calendar runs; "Sync now" asks for one (editors)."""

    list_display = ["started_at", "station", "kind", "status", "finished_at", "counts_display",
                    "requests", "error_short", "triggered_by"]
    list_filter = ["kind", "status"]
    list_select_related = ["station", "triggered_by"]
    date_hierarchy = "started_at"
    readonly_fields = ["station", "kind", "status", "started_at", "finished_at", "counts", "progress",
                       "requests", "error", "triggered_by"]
    fields = readonly_fields

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if stations_for(request.user).count() > 1:
            filters.append(("station", admin.RelatedOnlyFieldListFilter))
        return filters

    @admin.display(description=_("counts"))
    def counts_display(self, obj: SyncRun) -> str:
        return ", ".join(f"{key}: {value}" for key, value in sorted((obj.counts or {}).items()))

    @admin.display(description=_("error"))
    def error_short(self, obj: SyncRun) -> str:
        return obj.error if len(obj.error) <= 80 else obj.error[:79] + "…"

    def get_urls(self):
        return [path("sync-now/", self.admin_site.admin_view(self.sync_now_view),
                     name="radio_syncrun_sync_now"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        stations = [s for s in stations_for(request.user).order_by("name")
                    if has_role(request.user, s, Role.EDITOR)]
        extra_context = {**(extra_context or {}), "sync_stations": stations}
        return super().changelist_view(request, extra_context)

    def sync_now_view(self, request):
        return require_POST(self._sync_now)(request)

    def _sync_now(self, request):
        station = get_object_or_404(Station, slug=request.POST.get("station", ""))
        if not has_role(request.user, station, Role.EDITOR):
            raise PermissionDenied
        try:
            sync_now(station=station, actor=request.user)
        except SyncNotQueued:
            logger.exception("station=%s sync not queued: broker unavailable", station.slug)
            self.message_user(request, _("The task queue is unavailable; try again shortly."),
                              messages.ERROR)
        else:
            self.message_user(request, _("Sync queued for %(station)s.") % {"station": station.name},
                              messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:radio_syncrun_changelist"))
