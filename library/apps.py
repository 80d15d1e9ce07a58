from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "library"

    def ready(self) -> None:
        from library.tasks import drive_sync_request
        from radio.sync import sync_now_register

        # The sync-run admin (radio) offers "Sync now" for Drive.
        sync_now_register("drive", drive_sync_request)
