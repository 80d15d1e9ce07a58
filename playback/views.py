"""The playback REST API: now playing (members and public), queue, transport, as-run log.

Views stay thin: input is validated by serializers, the change is made by
`playback.services`, and the bodies are the same dicts the WebSocket feed sends.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Max, Min
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import utils as filter_utils
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from library.serializers import DetailSerializer
from library.views import AnyMediaNegotiation
from playback.filters import PlayerCommandFilter, PlayLogFilter
from playback.models import PlayerCommand, PlayLog, QueueItem
from playback.serializers import (
    CommandAcceptedSerializer,
    NowPlayingSerializer,
    PlayerCommandSerializer,
    PlayLogSerializer,
    PlayNowSerializer,
    PublicNowPlayingSerializer,
    QueueAddSerializer,
    QueueClearedSerializer,
    QueueItemSerializer,
    QueueMoveSerializer,
    SeekSerializer,
    VolumeSerializer,
)
from playback.services import (
    QueueError,
    QueueItemGone,
    command_issue,
    now_playing_data,
    play_now,
    playlog_csv_lines,
    playlog_history,
    queue_append,
    queue_clear,
    queue_data,
    queue_insert_next,
    queue_item_data,
    queue_items,
    queue_move,
    queue_remove,
)
from radio.models import Station
from radio.views import StationScopedMixin
from scheduling.serializers import ScheduleWindowSerializer


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with what is on air."
    default_code = "conflict"


ACCEPTED = {202: CommandAcceptedSerializer}


# --- Now playing --------------------------------------------------------------

class NowPlayingView(StationScopedMixin, APIView):
    """What is on air, what plays next and the last 10 items aired (members)."""

    @extend_schema(responses=NowPlayingSerializer)
    def get(self, request, *args, **kwargs):
        return Response(now_playing_data(self.station))


class TimelineView(StationScopedMixin, APIView):
    """What will play when: the programme (calendar events and slots after the priority rule),
    its conflicts, unresolved events and all-day notes, and the queue until the next start."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, *args, **kwargs):
        from playback.schedule import timeline_data

        window = ScheduleWindowSerializer(data=request.query_params)
        window.is_valid(raise_exception=True)
        start, end = window.validated_data["start"], window.validated_data["end"]
        data = timeline_data(self.station, start, end)
        data.update(start=start.isoformat(), end=end.isoformat(), time_zone=self.station.time_zone)
        return Response(data)


class PublicNowPlayingView(APIView):
    """Now playing for website widgets: no sign-in, only for stations that opted in.

    Nothing about people is included. Any origin may read it (CORS) and caches may
    keep it for 5 seconds.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    @extend_schema(responses={200: PublicNowPlayingSerializer, 404: DetailSerializer}, auth=[])
    def get(self, request, station_slug: str):
        station = Station.objects.filter(slug=station_slug, public_now_playing=True).first()
        if station is None:
            raise NotFound(_("This station does not publish what is on air."))
        response = Response(now_playing_data(station, public=True))
        response["Cache-Control"] = "public, max-age=5"
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Access-Control-Allow-Origin"] = "*"
        return response


# --- Queue --------------------------------------------------------------------

class QueueViewSet(StationScopedMixin, viewsets.GenericViewSet):
    """The station's queue in play order (the item on air first). Editors change it."""

    queryset = QueueItem.objects.none()
    serializer_class = QueueItemSerializer
    pagination_class = None
    filter_backends: list = []
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return queue_items(self.station)

    @extend_schema(responses=QueueItemSerializer(many=True))
    def list(self, request, *args, **kwargs):
        return Response(queue_data(self.station))

    @extend_schema(request=QueueAddSerializer, responses={201: QueueItemSerializer, 400: OpenApiResponse(
        description="Unknown track, or one that cannot go on air (the reason is in `track`)")})
    def create(self, request, *args, **kwargs):
        """Add a track at the end of the queue (`at: end`) or right after what is on air (`at: next`)."""
        form = QueueAddSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        add = queue_insert_next if form.validated_data["at"] == "next" else queue_append
        try:
            item = add(station=self.station, track=form.validated_data["track"], actor=request.user)
        except QueueError as exc:
            raise ValidationError({"track": [str(exc)]}) from exc
        return Response(queue_item_data(item), status=status.HTTP_201_CREATED)

    @extend_schema(request=QueueMoveSerializer,
                   responses={200: QueueItemSerializer, 404: DetailSerializer, 409: DetailSerializer})
    def partial_update(self, request, *args, **kwargs):
        """Move a queued item to `to_index` among the queued items (0 = next)."""
        item = self.get_object()
        form = QueueMoveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            item = queue_move(item=item, to_index=form.validated_data["to_index"], actor=request.user)
        except QueueItemGone as exc:  # removed (or played) since get_object() found it
            raise NotFound(str(exc)) from exc
        except QueueError as exc:
            raise Conflict(str(exc)) from exc
        return Response(queue_item_data(item))

    @extend_schema(responses={204: None, 404: DetailSerializer, 409: DetailSerializer})
    def destroy(self, request, *args, **kwargs):
        """Take a queued item off the queue. The item on air cannot be removed (skip it)."""
        try:
            queue_remove(item=self.get_object(), actor=request.user)
        except QueueItemGone as exc:
            raise NotFound(str(exc)) from exc
        except QueueError as exc:
            raise Conflict(str(exc)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=QueueClearedSerializer)
    @action(detail=False, methods=["post"])
    def clear(self, request, *args, **kwargs):
        """Remove every queued item (what is on air keeps playing)."""
        return Response({"removed": queue_clear(station=self.station, actor=request.user)})


# --- Transport ------------------------------------------------------------------

class PlayerViewSet(StationScopedMixin, viewsets.GenericViewSet):
    """Transport commands. Each is stored, then the playback worker is nudged: 202 + the command id."""

    queryset = PlayerCommand.objects.none()
    serializer_class = CommandAcceptedSerializer
    pagination_class = None
    filter_backends: list = []

    def _issue(self, action_name: str, args: dict | None = None) -> Response:
        command = command_issue(station=self.station, action=action_name, args=args, actor=self.request.user)
        return Response({"command": command.pk, "status": command.status}, status=status.HTTP_202_ACCEPTED)

    def _valid(self, serializer_class) -> dict:
        form = serializer_class(data=self.request.data, context={"station": self.station})
        form.is_valid(raise_exception=True)
        return form.validated_data

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def play(self, request, *args, **kwargs):
        """Start playing (after Stop, or when idle)."""
        return self._issue(PlayerCommand.Action.PLAY)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def pause(self, request, *args, **kwargs):
        return self._issue(PlayerCommand.Action.PAUSE)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def resume(self, request, *args, **kwargs):
        return self._issue(PlayerCommand.Action.RESUME)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def stop(self, request, *args, **kwargs):
        """Stop: the station stays silent until Play."""
        return self._issue(PlayerCommand.Action.STOP)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def skip(self, request, *args, **kwargs):
        """End the item on air now and go on with the queue."""
        return self._issue(PlayerCommand.Action.SKIP)

    @extend_schema(request=SeekSerializer, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def seek(self, request, *args, **kwargs):
        return self._issue(PlayerCommand.Action.SEEK, {"seconds": self._valid(SeekSerializer)["seconds"]})

    @extend_schema(request=VolumeSerializer, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def volume(self, request, *args, **kwargs):
        return self._issue(PlayerCommand.Action.VOLUME, self._valid(VolumeSerializer))

    @extend_schema(request=PlayNowSerializer, responses={**ACCEPTED, 400: OpenApiResponse(
        description="Unknown track, or one that cannot go on air (the reason is in `track`)")})
    @action(detail=False, methods=["post"], url_path="play-now", url_name="play-now")
    def play_now(self, request, *args, **kwargs):
        """Put the track next and interrupt what is on air with it (short fade)."""
        track = self._valid(PlayNowSerializer)["track"]
        try:
            command = play_now(station=self.station, track=track, actor=request.user)
        except QueueError as exc:
            raise ValidationError({"track": [str(exc)]}) from exc
        return Response({"command": command.pk, "status": command.status}, status=status.HTTP_202_ACCEPTED)


class PlayerCommandViewSet(StationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Commands sent to the player, newest first, with what the worker made of them."""

    serializer_class = PlayerCommandSerializer
    queryset = PlayerCommand.objects.none()
    filterset_class = PlayerCommandFilter
    ordering_fields = ["created_at"]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return (PlayerCommand.objects.filter(station=self.station).select_related("requested_by")
                .order_by("-created_at", "-id"))


# --- As-run log -----------------------------------------------------------------

CSV_BATCH_LINES = 500


def _batched(lines: Iterator[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= CSV_BATCH_LINES:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


async def _abatched(lines: Iterator[str]) -> AsyncIterator[str]:
    # Under ASGI Django would read a synchronous iterator whole before sending; each batch
    # is read on the request's database thread instead (the cursor lives on its connection).
    batches = _batched(lines)
    while (chunk := await sync_to_async(next, thread_sensitive=True)(batches, None)) is not None:
        yield chunk


def as_run_filename(station: Station, start: datetime | None, end: datetime | None) -> str:
    """`<slug>-as-run-<first day>-<last day>.csv`, days in the station's time zone."""
    zone = zoneinfo.ZoneInfo(station.time_zone)

    def day(value: datetime | None) -> str:
        return (value or timezone.now()).astimezone(zone).date().isoformat()

    return f"{station.slug}-as-run-{day(start)}-{day(end)}.csv"


def csv_response(request, lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    """Stream CSV lines as a download, never holding the whole file in memory."""

    def content() -> Iterator[str]:
        yield "\ufeff"  # a BOM lets spreadsheet programs read Hebrew (any non-ASCII text) as UTF-8
        yield from lines

    is_asgi = isinstance(getattr(request, "_request", request), ASGIRequest)
    response = StreamingHttpResponse(_abatched(content()) if is_asgi else _batched(content()),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-cache"
    return response


class AsRunCursorPagination(CursorPagination):
    """Pages of the as-run log by position, not OFFSET: page 900 costs what page 1 does.

    `?cursor=` comes from `next`/`previous`; there is no page count. The order is the view's
    (`?ordering=`), with the id appended in the same direction so rows that started in the
    same instant keep one order from page to page.
    """

    page_size = 50
    ordering = ("-started_at", "-id")

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        ordering = list(super().get_ordering(request, queryset, view))
        if not any(field.lstrip("-") in ("id", "pk") for field in ordering):
            ordering.append("-id" if ordering[0].startswith("-") else "id")
        return tuple(ordering)


class HistoryViewSet(StationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The as-run log: what aired, when, for how long, how it ended and why it played."""

    serializer_class = PlayLogSerializer
    pagination_class = AsRunCursorPagination
    queryset = PlayLog.objects.none()
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = PlayLogFilter
    ordering_fields = ["started_at"]
    ordering = ["-started_at", "-id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return playlog_history(self.station)

    def get_content_negotiator(self):
        # The CSV file is not one of the API's renderers: never answer its Accept with 406.
        if getattr(self, "action", None) == "export_csv":
            return AnyMediaNegotiation()
        return super().get_content_negotiator()

    def _filename(self, filterset, queryset) -> str:
        data = filterset.form.cleaned_data
        start, end = data.get("from"), data.get("to")
        if end is not None:
            end -= timedelta(microseconds=1)  # `to` is exclusive: name the last day covered
        if start is None or end is None:
            bounds = queryset.aggregate(first=Min("started_at"), last=Max("started_at"))
            start, end = start or bounds["first"], end or bounds["last"]
        return as_run_filename(self.station, start, end)

    @extend_schema(operation_id="v1_stations_history_csv", filters=True, responses={
        (200, "text/csv"): OpenApiTypes.STR, 400: OpenApiResponse(description="Bad filter values")})
    def export_csv(self, request, *args, **kwargs):
        """The as-run log as a CSV file (UTF-8 with BOM), oldest first unless `ordering` says otherwise.

        Same filters as the list. Times are UTC ISO 8601. Columns: started_at, ended_at,
        played_seconds, title, artist, kind, outcome, failure_reason, reason, requested_by, note.
        """
        filterset = DjangoFilterBackend().get_filterset(request, self.get_queryset(), self)
        if not filterset.is_valid():
            raise filter_utils.translate_validation(filterset.errors)
        queryset = filterset.qs
        if request.query_params.get(api_settings.ORDERING_PARAM):
            queryset = OrderingFilter().filter_queryset(request, queryset, self)
        else:
            queryset = queryset.order_by("started_at", "id")  # a log file reads oldest first
        return csv_response(request, playlog_csv_lines(queryset), self._filename(filterset, queryset))
