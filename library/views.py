"""The library's REST API: tracks (list, edit, upload, audio, cover), genres, playlists, sync runs,
duplicates."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.handlers.asgi import ASGIRequest
from django.db import IntegrityError
from django.db.models import Count
from django.http import HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAcceptable, NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from library import storage
from library.filters import SearchFilter, SyncRunFilter, TrackFilter, TrackSearchFilter
from library.models import Genre, Playlist, Track
from library.pagination import CappedCountPagination
from library.playlists import (
    playlist_create,
    playlist_delete,
    playlist_rewind,
    playlist_tracks,
    playlist_update,
)
from library.serializers import (
    DetailSerializer,
    DuplicatesSerializer,
    GenreSerializer,
    PlaylistSerializer,
    SyncRunSerializer,
    TrackSerializer,
    TrackUploadSerializer,
)
from library.services import (
    ImportRejected,
    duplicate_groups,
    genre_create,
    track_import_file,
    track_update,
    upload_limit_bytes,
)
from radio.models import SyncRun
from radio.views import StationScopedMixin

logger = logging.getLogger(__name__)

# Room for the multipart envelope and the small fields around the file itself.
UPLOAD_ENVELOPE_BYTES = 64 * 1024


# --- Serving files with HTTP ranges ---------------------------------------------

class RangeNotSatisfiable(Exception):
    pass


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range asked for, as inclusive (first, last); None means send the whole file.

    Multiple ranges, other units and malformed headers are ignored, which RFC 9110
    allows; a range that starts past the end raises RangeNotSatisfiable.
    """
    match = _RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # "bytes=-N": the last N bytes
        wanted = int(last)
        if wanted == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - wanted), size - 1
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if end >= start else None


CHUNK_BYTES = 256 * 1024


def _chunks(handle, length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            data = handle.read(min(CHUNK_BYTES, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        handle.close()


async def _achunks(handle, length: int) -> AsyncIterator[bytes]:
    # Under ASGI a synchronous iterator would be read into memory whole before sending
    # (Django's StreamingHttpResponse.__aiter__), so reads go to a thread chunk by chunk.
    try:
        while length > 0:
            data = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        handle.close()


def ranged_file_response(request, path: Path, content_type: str, etag: str = "") -> HttpResponseBase:
    """Stream a file with `Range` support (206/416), never loading it into memory."""
    size = path.stat().st_size
    header = request.headers.get("Range")
    if header and etag and request.headers.get("If-Range", etag) != etag:
        header = None  # the file changed since the client's partial copy: send all of it
    try:
        wanted = byte_range(header, size)
    except RangeNotSatisfiable:
        response = JsonResponse({"detail": _("The requested range is outside the file.")}, status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = wanted if wanted is not None else (0, size - 1)
    length = max(0, last - first + 1)
    handle = path.open("rb")
    handle.seek(first)
    is_asgi = isinstance(getattr(request, "_request", request), ASGIRequest)
    content = _achunks(handle, length) if is_asgi else _chunks(handle, length)
    response = StreamingHttpResponse(content, content_type=content_type,
                                     status=200 if wanted is None else 206)
    response["Content-Length"] = str(length)
    if wanted is not None:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-cache"
    if etag:
        response["ETag"] = etag
    return response


class AnyMediaNegotiation(DefaultContentNegotiation):
    """Audio players send `Accept: audio/*`; a file endpoint must not answer that with 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


FILE_ACTION = {"methods": ["get"], "detail": True, "content_negotiation_class": AnyMediaNegotiation,
               "filter_backends": [], "pagination_class": None}


@contextmanager
def saved_upload(upload) -> Iterator[Path]:
    """The upload as a real file with its own extension, removed afterwards."""
    suffix = Path(upload.name or "").suffix.lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
        suffix = ""
    if hasattr(upload, "temporary_file_path"):
        spooled = Path(upload.temporary_file_path())  # a large upload Django already wrote to disk
        if spooled.suffix.lower() == suffix:
            yield spooled
            return
    with tempfile.TemporaryDirectory(prefix="onair-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        yield path


# --- Tracks -------------------------------------------------------------------

class TrackViewSet(StationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """The station's tracks. Members read; editors upload and edit by hand.

    A hand edit pins the field: later syncs never overwrite it.
    """

    serializer_class = TrackSerializer
    queryset = Track.objects.none()
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "head", "options"]
    # Search over an indexed normalised column, ranked; a count that stops at 1,000 matches.
    filter_backends = [DjangoFilterBackend, TrackSearchFilter, filters.OrderingFilter]
    filterset_class = TrackFilter
    pagination_class = CappedCountPagination
    ordering_fields = ["title", "artist", "created_at", "play_count", "last_played_at", "duration"]

    def get_queryset(self):
        return Track.objects.filter(station=self.station).select_related("genre", "station")

    def get_serializer_class(self):
        return TrackUploadSerializer if self.action == "create" else TrackSerializer

    def get_parsers(self):
        # An upload is multipart; edits are JSON like the rest of the API. (DRF picks the
        # parsers before it sets `self.action`, so the action comes from the method here.)
        action = getattr(self, "action", None)
        if action is None and getattr(self, "request", None) is not None:
            action = self.action_map.get(self.request.method.lower())
        if action == "create":
            return [MultiPartParser()]
        return super().get_parsers()

    def perform_update(self, serializer):
        try:
            serializer.instance = track_update(actor=self.request.user, track=serializer.instance,
                                               data=serializer.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc

    def _too_large(self) -> Response:
        message = _("The file is larger than the upload limit of %(limit)s.") % {
            "limit": filesizeformat(upload_limit_bytes())}
        return Response({"detail": message, "file": [message]},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)

    @extend_schema(request={"multipart/form-data": TrackUploadSerializer},
                   responses={201: TrackSerializer, 400: OpenApiResponse(description="Not audio or bad fields"),
                              413: DetailSerializer})
    def create(self, request, *args, **kwargs):
        """Upload an audio file (multipart `file`, optional `kind`, `genre` id, `title`)."""
        limit = upload_limit_bytes()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit + UPLOAD_ENVELOPE_BYTES:
            return self._too_large()  # refuse before parsing the body
        upload_form = TrackUploadSerializer(data=request.data, context=self.get_serializer_context())
        upload_form.is_valid(raise_exception=True)
        data = upload_form.validated_data
        upload = data["file"]
        if upload.size > limit:
            return self._too_large()
        hints: dict[str, Any] = {k: data[k] for k in ("kind", "genre", "title") if data.get(k)}
        with saved_upload(upload) as path:
            try:
                track = track_import_file(station=self.station, path=path, source=Track.Source.UPLOAD,
                                          original_name=upload.name, hints=hints, actor=request.user)
            except ImportRejected as exc:
                raise ValidationError({"file": [str(exc)]}) from exc
        track = self.get_queryset().get(pk=track.pk)
        body = TrackSerializer(track, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "audio/*"): OpenApiTypes.BINARY, (206, "audio/*"): OpenApiTypes.BINARY,
                              404: DetailSerializer, 416: DetailSerializer})
    @action(url_path="audio", url_name="audio", **FILE_ACTION)
    def audio(self, request, *args, **kwargs):
        """The cached audio file, with HTTP Range support for players that seek."""
        track = self.get_object()
        if not storage.exists(track.file):
            raise NotFound(_("This track has no cached audio file."))
        content_type = (track.mime_type or mimetypes.guess_type(track.file)[0]
                        or "application/octet-stream")
        etag = f'"{track.file_checksum}"' if track.file_checksum else ""
        return ranged_file_response(request, storage.absolute(track.file), content_type, etag)

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, 404: DetailSerializer})
    @action(url_path="cover", url_name="cover", **FILE_ACTION)
    def cover(self, request, *args, **kwargs):
        """The track's cover art, when its file had one."""
        track = self.get_object()
        if not storage.exists(track.cover):
            raise NotFound(_("This track has no cover art."))
        path = storage.absolute(track.cover)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return ranged_file_response(request, path, content_type)


# --- Genres -------------------------------------------------------------------

class GenreViewSet(StationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   mixins.CreateModelMixin, viewsets.GenericViewSet):
    """The station's genres; editors add new ones (names are unique per station)."""

    serializer_class = GenreSerializer
    queryset = Genre.objects.none()
    filter_backends = [SearchFilter, filters.OrderingFilter]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at", "track_count"]

    def get_queryset(self):
        return Genre.objects.filter(station=self.station).annotate(track_count=Count("tracks")).order_by("name")

    def perform_create(self, serializer):
        try:
            serializer.instance = genre_create(actor=self.request.user, station=self.station,
                                               name=serializer.validated_data["name"])
        except IntegrityError as exc:  # a concurrent create won the race
            raise ValidationError({"name": [_("This station already has a genre with this name.")]}) from exc


# --- Playlists ----------------------------------------------------------------

class PlaylistViewSet(StationScopedMixin, viewsets.ModelViewSet):
    """The station's playlists: static (a list of tracks) or smart (a saved filter). Members read; editors
    create, change, delete and rewind them."""

    serializer_class = PlaylistSerializer
    queryset = Playlist.objects.none()
    lookup_value_regex = r"\d+"
    filter_backends = [DjangoFilterBackend, SearchFilter, filters.OrderingFilter]
    filterset_fields = ["kind"]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def get_queryset(self):
        playlists = Playlist.objects.filter(station=self.station).select_related("station")
        if self.action in ("tracks", "destroy"):  # no playlist body in the answer
            return playlists
        return playlists.prefetch_related("genres", "items")

    def perform_create(self, serializer):
        try:
            serializer.instance = playlist_create(actor=self.request.user, station=self.station,
                                                  data=serializer.validated_data)
        except IntegrityError as exc:
            raise self._write_conflict(serializer.validated_data) from exc

    def perform_update(self, serializer):
        try:
            serializer.instance = playlist_update(actor=self.request.user, playlist=serializer.instance,
                                                  data=serializer.validated_data)
        except IntegrityError as exc:
            raise self._write_conflict(serializer.validated_data) from exc
        serializer.instance._prefetched_objects_cache = {}  # items and genres as written

    def _write_conflict(self, data: dict[str, Any]) -> ValidationError:
        """What a concurrent write broke after the checks passed: a listed track deleted, or the slug taken."""
        items = set(data.get("items") or ())
        if items and Track.objects.filter(station=self.station, pk__in=items).count() < len(items):
            return ValidationError({"items": [_("A track in the list was deleted meanwhile; try again.")]})
        return ValidationError({"slug": [_("This station already has a playlist with this slug.")]})

    def perform_destroy(self, instance):
        playlist_delete(actor=self.request.user, playlist=instance)

    @extend_schema(responses=TrackSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=CappedCountPagination,
            serializer_class=TrackSerializer)
    def tracks(self, request, *args, **kwargs):
        """The tracks the playlist would play now, paged like the track list: only playable ones; a static
        playlist's in its list order (not the shuffled order), a smart one's least recently played first."""
        page = self.paginate_queryset(playlist_tracks(self.get_object()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None, responses=PlaylistSerializer)
    @action(detail=True, methods=["post"])
    def rewind(self, request, *args, **kwargs):
        """Start over: the next track is the first of the list again (a new pass, or a new random cycle)."""
        playlist = playlist_rewind(actor=request.user, playlist=self.get_object())
        return Response(PlaylistSerializer(self.get_queryset().get(pk=playlist.pk),
                                           context=self.get_serializer_context()).data)


# --- Sync runs ----------------------------------------------------------------

class SyncRunViewSet(StationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     viewsets.GenericViewSet):
    """Drive sync history. Editors POST to ask for a sync now."""

    serializer_class = SyncRunSerializer
    queryset = SyncRun.objects.none()
    filterset_class = SyncRunFilter
    ordering_fields = ["started_at", "finished_at"]

    def get_queryset(self):
        return SyncRun.objects.filter(station=self.station).select_related("triggered_by")

    @extend_schema(request=None, responses={202: DetailSerializer, 503: DetailSerializer})
    def create(self, request, *args, **kwargs):
        from library.tasks import drive_sync_request

        try:
            drive_sync_request(station=self.station, actor=request.user)
        except BrokerError:
            logger.exception("station=%s sync not queued: broker unavailable", self.station.slug)
            return Response({"detail": _("The task queue is unavailable; try again shortly.")},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"detail": _("Sync queued.")}, status=status.HTTP_202_ACCEPTED)


# --- Duplicates ---------------------------------------------------------------

class DuplicatesView(StationScopedMixin, APIView):
    """Duplicate tracks: `same_file` (same checksum) and `likely` (same artist + title)."""

    @extend_schema(responses=DuplicatesSerializer)
    def get(self, request, *args, **kwargs):
        return Response(duplicate_groups(self.station))
