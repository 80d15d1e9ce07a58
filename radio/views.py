"""The radio app's REST API: me, tokens, stations, members, notifications, audit."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.utils.crypto import constant_time_compare
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from radio.auth import signin_succeeded, token_issue
from radio.health import health_report
from radio.middleware import signin_locked_response
from radio.models import AuditEntry, Membership, Notification, Role, Station
from radio.permissions import StationRole, station_from_view
from radio.serializers import (
    AuditEntrySerializer,
    MembershipSerializer,
    MeSerializer,
    NotificationSerializer,
    StationSerializer,
)
from radio.services import (
    membership_remove,
    membership_set,
    notification_post,
    role_of,
    station_update,
    stations_for,
)


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        user = request.user
        stations = [{"slug": s.slug, "name": s.name, "role": role_of(user, s)}
                    for s in stations_for(user)]
        return Response({"username": user.get_username(), "email": user.email,
                         "is_superuser": user.is_superuser, "stations": stations})


class TokenView(ObtainAuthToken):
    """POST username + password → a new API token (the previous one stops working).

    Tokens expire after API_TOKEN_TTL_DAYS and are revoked by a password change.
    Sign-in is throttled: a locked account or address answers 429 with Retry-After.
    DELETE (authenticated) revokes your token.
    """

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [permissions.IsAuthenticated()]
        return [permissions.AllowAny()]

    @extend_schema(responses={200: inline_serializer("IssuedToken", {"token": serializers.CharField()}),
                              400: OpenApiResponse(description="Wrong username or password"),
                              429: OpenApiResponse(description="Too many failed sign-ins: locked")})
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        valid = serializer.is_valid()
        if getattr(request, "axes_locked_out", False):
            return signin_locked_response(request, username=str(request.data.get("username") or ""))
        if not valid:
            raise ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        signin_succeeded(request, user)
        return Response({"token": token_issue(user=user).key})

    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class StationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Stations you are a member of. Admins of a station may change its settings."""

    serializer_class = StationSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "station_slug"
    write_role = Role.ADMIN
    filterset_fields = ["output", "language"]
    ordering_fields = ["name", "slug"]

    def get_permissions(self):
        if "station_slug" in self.kwargs:
            return [StationRole()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self):
        return stations_for(self.request.user).order_by("name")

    def get_object(self):
        return station_from_view(self)

    def perform_update(self, serializer):
        serializer.instance = station_update(actor=self.request.user, station=serializer.instance,
                                             data=serializer.validated_data)


class StationScopedMixin:
    permission_classes = [StationRole]

    @property
    def station(self) -> Station:
        return station_from_view(self)


class MembershipViewSet(StationScopedMixin, viewsets.ModelViewSet):
    """Who may do what on this station. Only the station's admins see and change it."""

    serializer_class = MembershipSerializer
    queryset = Membership.objects.none()  # for the schema; get_queryset scopes to the station
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filterset_fields = ["role"]
    ordering_fields = ["created_at", "role"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return Membership.objects.filter(station=self.station).select_related("user")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = membership_set(actor=self.request.user, station=self.station,
                                             user=data["user"], role=data["role"])

    def perform_update(self, serializer):
        data = serializer.validated_data
        user = data.get("user", serializer.instance.user)
        if user != serializer.instance.user:
            raise PermissionDenied("A membership's user cannot change; remove it and add another.")
        serializer.instance = membership_set(actor=self.request.user, station=self.station,
                                             user=user, role=data.get("role", serializer.instance.role))

    def perform_destroy(self, instance):
        membership_remove(actor=self.request.user, membership=instance)


class NotificationViewSet(StationScopedMixin, mixins.ListModelMixin, mixins.CreateModelMixin,
                          mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages for the station's operators. Editors post notices; members read."""

    serializer_class = NotificationSerializer
    queryset = Notification.objects.none()
    filterset_fields = ["level", "source"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return Notification.objects.filter(station=self.station).select_related("created_by")

    def perform_create(self, serializer):
        serializer.instance = notification_post(
            station=self.station, actor=self.request.user,
            message=serializer.validated_data["message"],
            level=serializer.validated_data.get("level", Notification.Level.INFO),
        )


class AuditViewSet(StationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The station's audit journal: who changed what. Admins only."""

    serializer_class = AuditEntrySerializer
    queryset = AuditEntry.objects.none()
    read_role = Role.ADMIN
    filterset_fields = ["action", "object_type", "object_id"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return self.station.audit_entries.all()


def healthz(request):
    """JSON health of every part; 200 when all are up, 503 naming what is down."""
    if settings.HEALTHZ_TOKEN:
        given = request.GET.get("token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header.removeprefix("Bearer ")
        if not constant_time_compare(given, settings.HEALTHZ_TOKEN):
            return JsonResponse({"detail": "A valid health token is required."}, status=401)
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
