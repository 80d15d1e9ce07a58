from django.urls import path

from playback.auth import TokenAuthMiddleware
from playback.consumers import StationConsumer

websocket_urlpatterns = [
    path("ws/stations/<slug:station_slug>/", TokenAuthMiddleware(StationConsumer.as_asgi())),
]
