"""Playback API shapes: queue, transport commands, now-playing and the as-run log.

The queue and now-playing bodies are built by `playback.services` (the same dicts the
WebSocket feed sends); the serializers here validate input and document the output.
"""

from __future__ import annotations

import math

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from library.models import Track
from playback.models import PlayerCommand, PlayerState, PlayLog, QueueItem, Reason
from radio.serializers import IntegerPKField


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise serializers.ValidationError(_("A finite number is required."))
    return value


# --- input --------------------------------------------------------------------

class TrackChoiceField(IntegerPKField):
    """Any track id: whether it may go on air here is the queue service's call (with its reason)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", Track.objects.select_related("station"))
        kwargs.setdefault("help_text", _("Track id (of this station, enabled, analysed and cached)."))
        super().__init__(**kwargs)


class QueueAddSerializer(serializers.Serializer):
    track = TrackChoiceField()
    at = serializers.ChoiceField(choices=[("end", _("At the end")), ("next", _("Next, after what is on air"))],
                                 default="end")


class QueueMoveSerializer(serializers.Serializer):
    to_index = serializers.IntegerField(min_value=0, help_text=_("0 = next; among queued items."))


class SeekSerializer(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0.0, help_text=_("Seconds into the item on air."))

    def validate_seconds(self, value: float) -> float:
        value = _finite(value)
        # The worker reports the length on air (after cues) in PlayerState.duration.
        station = self.context.get("station")
        state = PlayerState.objects.filter(station=station, is_playing=True).first() if station else None
        if state is not None and state.duration is not None and value >= state.duration:
            message = _("The item on air is %(length).1f s long: seek to less than that.")
            raise serializers.ValidationError(message % {"length": state.duration})
        return value


class VolumeSerializer(serializers.Serializer):
    volume = serializers.IntegerField(min_value=0, max_value=100)
    fade_ms = serializers.IntegerField(min_value=0, max_value=10_000, required=False,
                                       help_text=_("Fade to the new volume over this many milliseconds."))


class PlayNowSerializer(serializers.Serializer):
    track = TrackChoiceField()


# --- output -------------------------------------------------------------------

class TrackBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    artist = serializers.CharField()
    kind = serializers.ChoiceField(choices=Track.Kind.choices)
    duration = serializers.FloatField(allow_null=True)
    cue_in = serializers.FloatField()
    cue_out = serializers.FloatField(allow_null=True)


class QueueItemSerializer(serializers.Serializer):
    """`playback.services.queue_item_data`: the same shape as in `queue_update` messages."""

    id = serializers.IntegerField()
    position = serializers.IntegerField()
    status = serializers.ChoiceField(choices=QueueItem.Status.choices)
    reason = serializers.ChoiceField(choices=Reason.choices)
    requested_by = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    track = TrackBriefSerializer()


class QueueClearedSerializer(serializers.Serializer):
    removed = serializers.IntegerField()


class CommandAcceptedSerializer(serializers.Serializer):
    command = serializers.IntegerField(help_text=_("Poll GET player/commands/<id> for the outcome."))
    # Not an enum here: a second component using the command statuses would make
    # drf-spectacular's enum name collide with SyncRun's `status`.
    status = serializers.CharField(help_text=_("`pending` when accepted; see the command for what followed."))


class PlayerCommandSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = PlayerCommand
        fields = ["id", "action", "args", "status", "result", "requested_by", "created_at", "handled_at"]
        read_only_fields = fields


class PlayLogSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = PlayLog
        fields = ["id", "uid", "track", "title", "artist", "kind", "started_at", "ended_at",
                  "played_seconds", "outcome", "failure_reason", "reason", "requested_by", "note"]
        read_only_fields = fields


# Now-playing (documentation of `playback.services.now_playing_data`).

class NowPlayingTrackSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    artist = serializers.CharField()
    kind = serializers.ChoiceField(choices=Track.Kind.choices)
    duration = serializers.FloatField(allow_null=True)


class NowPlayingStationSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    time_zone = serializers.CharField()


class OnAirSerializer(serializers.Serializer):
    track = NowPlayingTrackSerializer()
    started_at = serializers.DateTimeField(allow_null=True)
    elapsed = serializers.FloatField(help_text=_("Seconds played."))
    remaining = serializers.FloatField(allow_null=True)
    reason = serializers.ChoiceField(choices=Reason.choices, allow_blank=True)
    volume = serializers.IntegerField()


class PublicPlayingNextSerializer(serializers.Serializer):
    track = NowPlayingTrackSerializer()
    reason = serializers.ChoiceField(choices=Reason.choices)


class PlayingNextSerializer(PublicPlayingNextSerializer):
    requested_by = serializers.CharField(allow_null=True)


class PublicSongHistorySerializer(serializers.Serializer):
    track = NowPlayingTrackSerializer()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    played_seconds = serializers.FloatField()
    outcome = serializers.ChoiceField(choices=PlayLog.Outcome.choices)
    reason = serializers.ChoiceField(choices=Reason.choices)


class SongHistorySerializer(PublicSongHistorySerializer):
    requested_by = serializers.CharField(allow_null=True)


class PublicNowPlayingSerializer(serializers.Serializer):
    station = NowPlayingStationSerializer()
    is_online = serializers.BooleanField(help_text=_("The playback worker is running."))
    is_playing = serializers.BooleanField()
    paused = serializers.BooleanField()
    now_playing = OnAirSerializer(allow_null=True)
    playing_next = PublicPlayingNextSerializer(allow_null=True)
    queue_length = serializers.IntegerField(help_text=_("Items waiting (not counting the one on air)."))
    song_history = PublicSongHistorySerializer(many=True, help_text=_("The last 10 items aired."))


class NowPlayingSerializer(PublicNowPlayingSerializer):
    playing_next = PlayingNextSerializer(allow_null=True)
    song_history = SongHistorySerializer(many=True, help_text=_("The last 10 items aired."))
