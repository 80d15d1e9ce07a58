from django.urls import re_path
from rest_framework.routers import SimpleRouter

from scheduling import views

STATION = r"stations/(?P<station_slug>[-\w]+)"

# SimpleRouter: the API root view already comes from radio's DefaultRouter.
router = SimpleRouter(trailing_slash=False)
router.register(rf"{STATION}/calendars", views.CalendarSourceViewSet, basename="calendar")
router.register(rf"{STATION}/calendar-events", views.CalendarEventViewSet, basename="calendarevent")
router.register(rf"{STATION}/slots", views.ProgramSlotViewSet, basename="programslot")

urlpatterns = [
    re_path(rf"^{STATION}/schedule$", views.ScheduleView.as_view(), name="schedule"),
    re_path(rf"^{STATION}/schedule/conflicts$", views.ScheduleConflictsView.as_view(),
            name="schedule-conflicts"),
    *router.urls,
]
