from django.urls import re_path
from rest_framework.routers import SimpleRouter

from playback import views

STATION = r"stations/(?P<station_slug>[-\w]+)"

# SimpleRouter: the API root view already comes from radio's DefaultRouter.
router = SimpleRouter(trailing_slash=False)
router.register(rf"{STATION}/queue", views.QueueViewSet, basename="queue")
router.register(rf"{STATION}/player/commands", views.PlayerCommandViewSet, basename="playercommand")
router.register(rf"{STATION}/player", views.PlayerViewSet, basename="player")
router.register(rf"{STATION}/history", views.HistoryViewSet, basename="playlog")

urlpatterns = [
    re_path(rf"^{STATION}/now-playing$", views.NowPlayingView.as_view(), name="now-playing"),
    re_path(rf"^{STATION}/timeline$", views.TimelineView.as_view(), name="timeline"),
    re_path(r"^public/stations/(?P<station_slug>[-\w]+)/now-playing$", views.PublicNowPlayingView.as_view(),
            name="public-now-playing"),
    re_path(rf"^{STATION}/history\.csv$", views.HistoryViewSet.as_view({"get": "export_csv"}),
            name="playlog-csv"),
    *router.urls,
]
