"""WebSocket sign-in by API token, for programs that are not browsers.

A client sends `Authorization: Token <key>` with the handshake; browsers use the
session cookie instead (AuthMiddlewareStack). Anything else stays anonymous and
is refused by the consumer.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    from radio.auth import token_expired

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or token_expired(token) or not token.user.is_active:
        return None
    return token.user


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            headers = dict(scope.get("headers") or [])
            value = headers.get(b"authorization", b"").decode("latin-1")
            if value.startswith("Token "):
                token_user = await _user_for_token(value.removeprefix("Token ").strip())
                if token_user is not None:
                    scope = {**scope, "user": token_user}
        return await super().__call__(scope, receive, send)
