"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets get the Django session (AuthMiddlewareStack) and an Origin check
against ALLOWED_HOSTS (+ WEBSOCKET_ALLOWED_ORIGINS), so another site cannot
open a socket with a signed-in operator's cookie.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from playback.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
            [*settings.ALLOWED_HOSTS, *settings.WEBSOCKET_ALLOWED_ORIGINS],
        ),
    }
)
