"""The admin site: who may enter follows station roles, not only the staff flag.

Editors and admins of at least one station curate in the admin; the staff flag
follows their roles (radio.services.user_staff_sync). The site checks the roles
on every request as well, so a flag left stale (set by hand, or by a bulk
update that sent no signal) opens nothing, and the admin sign-in refuses it.
This module is loaded with the app registry: it imports no models at the top.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


def _login_form():
    # Built on first use: django.contrib.admin.forms needs the user model, not loaded yet here.
    from django.contrib.admin.forms import AdminAuthenticationForm

    from radio.services import admin_access_allowed

    class OnAirAdminAuthenticationForm(AdminAuthenticationForm):
        def confirm_login_allowed(self, user) -> None:
            super().confirm_login_allowed(user)
            if not admin_access_allowed(user):
                raise self.get_invalid_login_error()

    return OnAirAdminAuthenticationForm


class OnAirAdminSite(admin.AdminSite):
    site_header = "OnAir"
    site_title = "OnAir"

    def login(self, request, extra_context=None):
        if self.login_form is None:
            self.login_form = _login_form()
        return super().login(request, extra_context)

    def has_permission(self, request) -> bool:
        from radio.services import admin_access_allowed

        return admin_access_allowed(request.user)


class OnAirAdminConfig(AdminConfig):
    default_site = "radio.admin_site.OnAirAdminSite"
