from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from radio.models import AuditEntry, Membership, Notification, Role, Station
from radio.services import role_of


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
    username = serializers.SlugRelatedField(
        source="user", slug_field="username", queryset=get_user_model().objects.all()
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class NotificationSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

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
    email = serializers.EmailField()
    is_superuser = serializers.BooleanField()
    stations = serializers.ListField(child=serializers.DictField())
