from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from radio.models import AuditEntry, Membership, Notification, Role, Station
from radio.services import role_of

# The largest id a PostgreSQL bigint (Django's BigAutoField) holds.
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IntegerPKField(serializers.PrimaryKeyRelatedField):
    """A related object's id: a whole number in the id range, checked before any query.

    DRF's own field hands the raw JSON value to the database: 1.5 became id 1 and 1e400
    (infinity) a server error. Here the value goes through an IntegerField first, so
    `1`, `"1"` and `1.0` are id 1, and 1.5, 1e400, `true` or 2**64 are a 400 on the field.
    """

    default_error_messages = {
        "invalid_id": _("A whole-number id between 1 and {max} is required."),
    }

    def to_internal_value(self, data):
        if isinstance(data, bool):  # bool is an int in Python; as an id it is a mistake
            self.fail("invalid_id", max=MAX_ID)
        try:
            data = serializers.IntegerField(min_value=1, max_value=MAX_ID).run_validation(data)
        except serializers.ValidationError:
            self.fail("invalid_id", max=MAX_ID)
        return super().to_internal_value(data)


class TextSlugRelatedField(serializers.SlugRelatedField):
    """A SlugRelatedField that refuses text PostgreSQL cannot compare (NUL bytes) and non-text."""

    default_error_messages = {
        "not_text": _("A text value is required."),
        "null_characters_not_allowed": _("Null characters are not allowed."),
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text")
        if "\x00" in data:  # what ProhibitNullCharactersValidator checks on DRF's CharField
            self.fail("null_characters_not_allowed")
        return super().to_internal_value(data)


class StationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Station
        fields = ["slug", "name", "time_zone", "language", "output", "output_device",
                  "icecast_mount", "icecast_bitrate", "role", "created_at"]
        read_only_fields = ["slug", "created_at", "role"]

    def get_role(self, station: Station) -> str | None:
        request = self.context.get("request")
        return role_of(request.user, station) if request else None

    def validate(self, attrs):
        # Run the model's own rules (time zone, Icecast mount) so the API answers
        # 400 with field errors instead of saving a station that cannot go on air.
        instance = Station(**{**self._current(), **attrs})
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            instance.full_clean(exclude=["slug"], validate_unique=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in self.Meta.fields
                if f not in ("role", "created_at")}


class MembershipSerializer(serializers.ModelSerializer):
    username = TextSlugRelatedField(
        source="user", slug_field="username", queryset=get_user_model().objects.all()
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class NotificationSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = ["id", "level", "message", "source", "created_by", "created_at"]
        read_only_fields = ["id", "source", "created_by", "created_at"]


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_repr", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "created_at", "actor", "action", "object_type", "object_id",
                  "object_repr", "before", "after"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    is_superuser = serializers.BooleanField()
    stations = serializers.ListField(child=serializers.DictField())
