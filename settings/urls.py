from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from radio import google_connect, pages
from radio.views import healthz

admin.site.site_header = "OnAir"
admin.site.site_title = "OnAir"

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", pages.SignInView.as_view(), name="login"),
    path("logout/", pages.SignOutView.as_view(), name="logout"),
    path("stations/<slug:station_slug>/", pages.station_page, name="station"),
    path("stations/<slug:station_slug>/notices", pages.station_notice, name="station-notice"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/google/connect/<slug:station_slug>/", google_connect.connect_start, name="google-connect"),
    path("admin/google/callback/", google_connect.connect_callback, name="google-connect-callback"),
    path("admin/", admin.site.urls),
    path("auth/", include("social_django.urls", namespace="social")),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("radio.urls")),
    path("api/v1/", include("library.urls")),
    path("api/v1/", include("playback.urls")),
    path("api/v1/", include("scheduling.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

# Unmatched /api/ URLs answer JSON {"detail": …}; pages keep Django's 404 page.
handler404 = "radio.middleware.not_found"
