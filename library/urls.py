from django.urls import re_path
from rest_framework.routers import SimpleRouter

from library import views

# SimpleRouter: the API root view already comes from radio's DefaultRouter.
router = SimpleRouter(trailing_slash=False)
router.register(r"stations/(?P<station_slug>[-\w]+)/tracks", views.TrackViewSet, basename="track")
router.register(r"stations/(?P<station_slug>[-\w]+)/genres", views.GenreViewSet, basename="genre")
router.register(r"stations/(?P<station_slug>[-\w]+)/playlists", views.PlaylistViewSet, basename="playlist")
router.register(r"stations/(?P<station_slug>[-\w]+)/sync-runs", views.SyncRunViewSet,
                basename="syncrun")

urlpatterns = [
    re_path(r"^stations/(?P<station_slug>[-\w]+)/duplicates$", views.DuplicatesView.as_view(),
            name="library-duplicates"),
    *router.urls,
]
