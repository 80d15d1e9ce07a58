"""Library API shapes: tracks (hand-editable fields only), uploads, genres, sync runs."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from library.models import Genre, Track
from radio.models import Role, SyncRun
from radio.serializers import IntegerPKField
from radio.services import request_role, role_at_least


def cue_errors(cue_in: float | None, cue_out: float | None, duration: float | None) -> dict[str, str]:
    """Where a track starts and stops must make sense; shared by the API and the admin."""
    errors: dict[str, str] = {}
    if cue_in is not None and cue_in < 0:
        errors["cue_in"] = _("Cue in cannot be negative.")
    elif cue_in is not None and duration and cue_in >= duration:
        errors["cue_in"] = _("Cue in must be before the end of the track (%(duration).1f s).") % {
            "duration": duration}
    if cue_out is not None:
        if cue_out < 0:
            errors["cue_out"] = _("Cue out cannot be negative.")
        elif cue_in is not None and cue_out <= cue_in:
            errors["cue_out"] = _("Cue out must come after cue in.")
    return errors


class StationGenreField(IntegerPKField):
    """A genre id, accepted only from the station in the URL."""

    def get_queryset(self):
        view = self.context.get("view")
        station = getattr(view, "station", None) if view is not None else None
        if station is None:
            return Genre.objects.none()
        return Genre.objects.filter(station=station)


class TrackSerializer(serializers.ModelSerializer):
    genre = StationGenreField(required=False, allow_null=True)
    genre_name = serializers.CharField(source="genre.name", read_only=True, allow_null=True)
    is_playable = serializers.BooleanField(read_only=True)
    missing = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()
    cover_url = serializers.SerializerMethodField()
    source_id = serializers.SerializerMethodField(
        help_text=_("Where the source keeps the file (a Drive file id, a server path): editors and admins "
                    "only, null for viewers."))

    class Meta:
        model = Track
        fields = [
            "id", "kind", "title", "artist", "album", "genre", "genre_name", "year", "language",
            "show_name", "batch", "enabled", "cue_in", "cue_out", "duration",
            "loudness_lufs", "true_peak_dbtp", "bitrate", "sample_rate", "mime_type", "size",
            "checksum", "source", "source_id", "source_path", "source_modified",
            "missing", "missing_since", "analysis", "analysis_error", "is_playable",
            "play_count", "last_played_at", "edited_fields", "audio_url", "cover_url",
            "created_at", "updated_at",
        ]
        read_only_fields = [f for f in fields if f not in Track.EDITABLE_FIELDS]
        extra_kwargs = {"cue_in": {"min_value": 0.0}, "cue_out": {"min_value": 0.0}}

    def get_missing(self, track: Track) -> bool:
        return track.missing_since is not None

    def _sees_sources(self, track: Track) -> bool:
        # Asked once per serializer (a list shares one child), not once per track.
        if not hasattr(self, "_sees_sources_cache"):
            request = self.context.get("request")
            # The role the request already looked up (request_role): no second membership query.
            self._sees_sources_cache = bool(request) and role_at_least(request_role(request, track.station),
                                                                       Role.EDITOR)
        return self._sees_sources_cache

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_source_id(self, track: Track) -> str | None:
        # A folder import's id is the file's absolute path on the server: not for viewers.
        return track.source_id if self._sees_sources(track) else None

    def _url(self, track: Track, name: str) -> str:
        return reverse(name, kwargs={"station_slug": track.station.slug, "pk": track.pk},
                       request=self.context.get("request"))

    def get_audio_url(self, track: Track) -> str | None:
        return self._url(track, "track-audio") if track.file else None

    def get_cover_url(self, track: Track) -> str | None:
        return self._url(track, "track-cover") if track.cover else None

    def validate(self, attrs):
        current = self.instance
        errors = cue_errors(
            attrs.get("cue_in", current.cue_in if current else 0.0),
            attrs.get("cue_out", current.cue_out if current else None),
            current.duration if current else None,
        )
        # Report only what this request touched, plus the pair it broke.
        if errors and ({"cue_in", "cue_out"} & attrs.keys()):
            raise serializers.ValidationError({k: [v] for k, v in errors.items()})
        return attrs


class TrackUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False, help_text=_("The audio file."))
    kind = serializers.ChoiceField(choices=Track.Kind.choices, required=False)
    genre = StationGenreField(required=False, allow_null=True)
    title = serializers.CharField(required=False, max_length=300)


class GenreSerializer(serializers.ModelSerializer):
    track_count = serializers.SerializerMethodField()

    class Meta:
        model = Genre
        fields = ["id", "name", "track_count", "created_at"]
        read_only_fields = ["id", "track_count", "created_at"]

    def get_track_count(self, genre: Genre) -> int:
        return getattr(genre, "track_count", 0)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError(_("A genre needs a name."))
        station = self.context["view"].station
        clash = Genre.objects.filter(station=station, name__iexact=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(_("This station already has a genre with this name."))
        return value


class SyncRunSerializer(serializers.ModelSerializer):
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = SyncRun
        fields = ["id", "kind", "status", "started_at", "finished_at", "counts", "progress",
                  "requests", "error", "triggered_by"]
        read_only_fields = fields


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class DuplicateTrackSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    artist = serializers.CharField()
    kind = serializers.CharField()
    enabled = serializers.BooleanField()


class DuplicateGroupSerializer(serializers.Serializer):
    key = serializers.CharField(help_text=_("The shared checksum, or normalised artist|title."))
    count = serializers.IntegerField()
    tracks = DuplicateTrackSerializer(many=True)


class DuplicatesSerializer(serializers.Serializer):
    same_file = DuplicateGroupSerializer(many=True)
    likely = DuplicateGroupSerializer(many=True)
