from django.conf import settings


def onair(request) -> dict:
    return {
        "google_signin_enabled": bool(settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY
                                      and settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET),
    }
