from django.conf import settings


def onair(request) -> dict:
    return {"google_signin_enabled": settings.GOOGLE_SIGNIN_ENABLED}
