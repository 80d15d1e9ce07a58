"""Library API shapes: tracks (hand-editable fields only), uploads, genres, playlists, sync runs."""

from __future__ import annotations

from django.core.validators import validate_unicode_slug
from django.db.models import Q
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from library.models import Genre, Playlist, Track
from radio.models import Role, SyncRun
from radio.serializers import MAX_ID, IntegerPKField
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


# --- Playlists ------------------------------------------------------------------

# The rules of a smart playlist; a static one has none (PlaylistSerializer.validate).
SMART_RULES = ("kinds", "genres", "artists", "language", "year_from", "year_to", "min_seconds", "max_seconds",
               "not_aired_hours", "limit")
# A century: further back than any library goes, and `now - hours` stays a valid date.
MAX_NOT_AIRED_HOURS = 24 * 366 * 100


def is_set(value) -> bool:
    """A rule (or item list) that holds something: not null, "" or []. 0 is a value."""
    return value is not None and value != "" and value != []


class PlaylistItemsField(serializers.ListField):
    """A static playlist's track ids in play order, read from and written to its items."""

    child = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    def get_attribute(self, instance: Playlist) -> list[int]:
        return [item.track_id for item in instance.items.all()]  # prefetched by the view


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 200})
class UnicodeSlugField(serializers.CharField):
    """Letters of any script, digits, `_` and `-`. The rule is checked here, not by a validator, so the
    schema carries no `pattern`: JSON Schema's `\\w` is ASCII only and would call a Hebrew slug wrong."""

    default_error_messages = {"invalid_slug": validate_unicode_slug.message}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not validate_unicode_slug.regex.fullmatch(value):
            self.fail("invalid_slug")
        return value


class PlaylistSerializer(serializers.ModelSerializer):
    slug = UnicodeSlugField(
        max_length=200, required=False,
        help_text=_("Made from the name when a playlist is created without one; kept when it is renamed."))
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=Track.Kind.choices), required=False,
                                  help_text=_("Smart: track kinds, any of them."))
    genres = StationGenreField(many=True, required=False, help_text=_("Smart: genre ids, any of them."))
    artists = serializers.ListField(child=serializers.CharField(max_length=300), required=False,
                                    help_text=_("Smart: artists, any of them (case-insensitive)."))
    min_seconds = serializers.FloatField(min_value=0.0, required=False, allow_null=True,
                                         help_text=_("Smart: shortest length as heard (after cues)."))
    max_seconds = serializers.FloatField(min_value=0.0, required=False, allow_null=True,
                                         help_text=_("Smart: longest length as heard (after cues)."))
    not_aired_hours = serializers.IntegerField(min_value=0, max_value=MAX_NOT_AIRED_HOURS, required=False,
                                               allow_null=True,
                                               help_text=_("Smart: not aired within this many hours."))
    limit = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True,
        help_text=_("Smart: at most this many tracks, least recently played first."))
    items = PlaylistItemsField(required=False, help_text=_(
        "Static: track ids in play order (a track may appear more than once). Writing it replaces the list."))

    class Meta:
        model = Playlist
        fields = ["id", "name", "slug", "kind", "order", *SMART_RULES, "items", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    @property
    def station(self):
        return self.context["view"].station

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if self.instance is not None and value == self.instance.name:
            return value
        # The schedule names a playlist by its name or by the slug of that name (scheduling/content.py):
        # neither may point at another playlist of the station.
        clash = Playlist.objects.filter(Q(name__iexact=value) | Q(slug=slugify(value, allow_unicode=True)),
                                        station=self.station)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(_("This station already has a playlist with this name."))
        return value

    def validate_slug(self, value: str) -> str:
        clash = Playlist.objects.filter(station=self.station, slug=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(_("This station already has a playlist with this slug."))
        return value

    def validate_items(self, value: list[int]) -> list[int]:
        found = set(Track.objects.filter(station=self.station, pk__in=set(value)).values_list("pk", flat=True))
        unknown = list(dict.fromkeys(pk for pk in value if pk not in found))
        if unknown:
            raise serializers.ValidationError(ngettext(
                "No track on this station has the id %(ids)s.", "No track on this station has the ids %(ids)s.",
                len(unknown)) % {"ids": ", ".join(map(str, unknown))})
        return value

    def _value(self, attrs: dict, field: str):
        """The field as it will be after this write: from the request, else the playlist's."""
        if field in attrs:
            return attrs[field]
        if self.instance is None:
            return None
        if field == "genres":
            return list(self.instance.genres.all())
        if field == "items":
            return [item.track_id for item in self.instance.items.all()]
        return getattr(self.instance, field)

    def validate(self, attrs):
        errors: dict[str, list] = {}
        if not self._value(attrs, "slug") and not slugify(attrs.get("name", ""), allow_unicode=True):
            errors["slug"] = [_("No slug can be made from this name: give one.")]
        pairs = (("year_from", "year_to", _("The last year cannot come before the first.")),
                 ("min_seconds", "max_seconds", _("The longest length cannot be below the shortest.")))
        for low, high, message in pairs:
            first, last = self._value(attrs, low), self._value(attrs, high)
            if first is not None and last is not None and last < first and {low, high} & attrs.keys():
                errors[high] = [message]
        # A static playlist plays its items, a smart one its rules: what does not belong is refused,
        # never silently dropped. Only what this request sets or (by changing the kind) re-reads counts.
        kind = self._value(attrs, "kind") or Playlist.Kind.STATIC
        if kind == Playlist.Kind.STATIC:
            for field in SMART_RULES:
                if (field in attrs or "kind" in attrs) and is_set(self._value(attrs, field)):
                    errors[field] = [_("A static playlist has no filter rules: leave this empty, or make the "
                                       "playlist smart.")]
        elif ("items" in attrs or "kind" in attrs) and is_set(self._value(attrs, "items")):
            errors["items"] = [_("A smart playlist has no track list: leave this empty, or make the playlist "
                                 "static.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


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
