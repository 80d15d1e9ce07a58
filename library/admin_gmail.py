"""Admin for the Gmail review queue and classification rules (Google connections: radio/admin.py)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from library.gmail import gmail_review_approve, gmail_review_reject
from library.models import ClassificationRule, GmailImport
from library.services import ImportRejected
from radio.admin import StationScopedAdmin
from radio.models import Role
from radio.services import has_role


@admin.register(GmailImport)
class GmailImportAdmin(StationScopedAdmin):
    list_display = ["created_at", "filename", "subject", "sender", "status", "suggested_kind",
                    "suggested_genre", "reason", "track_link"]
    list_filter = ["status", "station"]
    list_editable = ["suggested_kind", "suggested_genre"]
    search_fields = ["filename", "subject", "sender"]
    readonly_fields = ["message_id", "part_id", "filename", "sender", "subject", "received_at", "status",
                       "reason", "stash", "checksum", "track", "decided_by", "decided_at", "created_at"]
    actions = ["approve", "reject"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("track"))
    def track_link(self, obj):
        if obj.track_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:library_track_change", args=[obj.track_id]), obj.track)

    @admin.action(description=_("Import with the chosen kind and genre"))
    def approve(self, request, queryset):
        done = 0
        for item in queryset.filter(status=GmailImport.Status.REVIEW).select_related("station"):
            if not has_role(request.user, item.station, Role.EDITOR):
                continue
            if not item.suggested_kind:
                self.message_user(request, _("%(file)s: choose a kind first.") % {"file": item.filename},
                                  messages.ERROR)
                continue
            try:
                gmail_review_approve(item=item, kind=item.suggested_kind, genre=item.suggested_genre,
                                     actor=request.user)
                done += 1
            except ImportRejected as exc:
                self.message_user(request, str(exc), messages.ERROR)
        self.message_user(request, _("%(n)d attachment(s) imported.") % {"n": done})

    @admin.action(description=_("Reject"))
    def reject(self, request, queryset):
        done = 0
        for item in queryset.filter(status=GmailImport.Status.REVIEW).select_related("station"):
            if has_role(request.user, item.station, Role.EDITOR):
                gmail_review_reject(item=item, actor=request.user)
                done += 1
        self.message_user(request, _("%(n)d attachment(s) rejected.") % {"n": done})


@admin.register(ClassificationRule)
class ClassificationRuleAdmin(StationScopedAdmin):
    list_display = ["priority", "field", "pattern", "kind", "genre", "station"]
    list_editable = ["kind", "genre"]
    list_filter = ["field", "kind", "station"]
    search_fields = ["pattern"]
