from django.urls import path
from rest_framework.routers import DefaultRouter

from radio import views

router = DefaultRouter(trailing_slash=False)
router.register(r"stations", views.StationViewSet, basename="station")
router.register(r"stations/(?P<station_slug>[-\w]+)/members", views.MembershipViewSet,
                basename="membership")
router.register(r"stations/(?P<station_slug>[-\w]+)/notifications", views.NotificationViewSet,
                basename="notification")
router.register(r"stations/(?P<station_slug>[-\w]+)/audit", views.AuditViewSet, basename="audit")

urlpatterns = [
    path("me", views.MeView.as_view(), name="api-me"),
    path("auth/token", views.TokenView.as_view(), name="api-token"),
    *router.urls,
]
