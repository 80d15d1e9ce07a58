from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self) -> None:
        from radio.sync import sync_now_register
        from scheduling import signals  # noqa: F401 - schedule_update on every change of the programme
        from scheduling.tasks import calendar_sync_request

        sync_now_register("calendar", calendar_sync_request)
