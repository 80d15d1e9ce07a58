"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets get the Django session (AuthMiddlewareStack) and an exact Origin
check (scheme, host and port: the site's own origin, CSRF_TRUSTED_ORIGINS or
WEBSOCKET_ALLOWED_ORIGINS; radio/origin.py), so another site cannot open a
socket with a signed-in operator's cookie.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
os.environ.setdefault("ONAIR_PROCESS", "web")  # pooled database connections (settings/base.py)
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from playback.routing import websocket_urlpatterns  # noqa: E402
from radio.db import guard_sessions, watch_pool  # noqa: E402
from radio.middleware import RequestLimitMiddleware  # noqa: E402
from radio.origin import ExactOriginValidator  # noqa: E402

# A request that loses the database inside a transaction must not hold the queue lock for hours.
guard_sessions(idle_in_transaction=settings.DB_IDLE_IN_TRANSACTION_SECONDS)
# Requests waiting for a pooled connection are logged (radio/db.py).
watch_pool(settings.DB_POOL_WATCH_SECONDS)

application = ProtocolTypeRouter(
    {
        # Refuses oversized and anonymous API bodies before Django reads them (radio/middleware.py).
        "http": RequestLimitMiddleware(django_asgi_app),
        "websocket": ExactOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
