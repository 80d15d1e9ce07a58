# The Celery app is imported when Django starts so shared_task binds to it.
from settings.celery import app as celery_app

__all__ = ("celery_app",)
