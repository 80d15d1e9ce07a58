"""On-air state: the queue, operators' commands, the player's state and the as-run log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from library.models import Track
from radio.models import Station


class Reason(models.TextChoices):
    MANUAL = "manual", _("Manual")
    SCHEDULE = "schedule", _("Schedule")
    AUTODJ = "autodj", _("Auto-DJ")
    CAMPAIGN = "campaign", _("Campaign")
    EMERGENCY = "emergency", _("Emergency")


class QueueItem(models.Model):
    """What plays next. Ordered by `position`; the one on air has status PLAYING.

    Positions are 0..n-1 per station, the item on air first: unique (a constraint) and
    dense, kept so by the queue services under the station's queue lock.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PLAYING = "playing", _("Playing")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="queue_items")
    track = models.ForeignKey(Track, on_delete=models.PROTECT, related_name="queue_items")
    position = models.IntegerField(_("position"), db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.QUEUED)
    reason = models.CharField(_("why"), max_length=16, choices=Reason.choices, default=Reason.MANUAL)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    note = models.CharField(_("note"), max_length=200, blank=True,
                            help_text=_("e.g. the schedule event or campaign that asked for it"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("queue item")
        verbose_name_plural = _("queue")
        indexes = [models.Index(fields=["station", "status", "position"])]
        constraints = [models.UniqueConstraint(fields=["station", "position"], name="queue_position_unique")]

    def __str__(self) -> str:
        return f"{self.position}: {self.track}"


class PlayerCommand(models.Model):
    """An operator's intent, stored before the worker is nudged, so none is ever lost."""

    class Action(models.TextChoices):
        PLAY = "play", _("Play")
        PAUSE = "pause", _("Pause")
        RESUME = "resume", _("Resume")
        STOP = "stop", _("Stop")
        SKIP = "skip", _("Skip")
        SEEK = "seek", _("Seek")
        VOLUME = "volume", _("Volume")
        PLAY_NOW = "play_now", _("Play now")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        # Waited longer than PLAYBACK_COMMAND_MAX_AGE: a Skip pressed while the worker
        # was down must not fire when it comes back.
        EXPIRED = "expired", _("Expired")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="player_commands")
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    args = models.JSONField(_("arguments"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.PENDING, db_index=True)
    result = models.CharField(_("result"), max_length=300, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("player command")
        verbose_name_plural = _("player commands")

    def __str__(self) -> str:
        return f"{self.action} {self.args or ''}"


class PlayerState(models.Model):
    """What the worker last reported. Liveness is the worker's lease (radio.WorkerHeartbeat)."""

    station = models.OneToOneField(Station, on_delete=models.CASCADE, related_name="player_state")
    is_playing = models.BooleanField(default=False)
    paused = models.BooleanField(default=False)
    stopped = models.BooleanField(default=False,
                                  help_text=_("Stopped by an operator: the worker waits for Play."))
    current_track = models.ForeignKey(Track, on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="+")
    current_log_uid = models.UUIDField(null=True, blank=True)
    current_reason = models.CharField(max_length=16, choices=Reason.choices, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    position = models.FloatField(default=0.0, help_text=_("seconds into the current item"))
    duration = models.FloatField(null=True, blank=True)
    volume = models.PositiveSmallIntegerField(default=100)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("player state")
        verbose_name_plural = _("player states")

    def __str__(self) -> str:
        return f"{self.station}: {'playing' if self.is_playing else 'idle'}"


class PlayLog(models.Model):
    """As-run log: what actually aired, when, for how long, and why."""

    class Outcome(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        SKIPPED = "skipped", _("Skipped")
        INTERRUPTED = "interrupted", _("Interrupted")
        FAILED = "failed", _("Failed")

    uid = models.UUIDField(default=uuid.uuid4, unique=True,
                           help_text=_("Made by the worker, so a row written late is written once."))
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="play_logs")
    track = models.ForeignKey(Track, on_delete=models.PROTECT, related_name="play_logs")
    title = models.CharField(_("title"), max_length=300)
    artist = models.CharField(_("artist"), max_length=300, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Track.Kind.choices)
    started_at = models.DateTimeField(_("started"), db_index=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    played_seconds = models.FloatField(_("time played (s)"), default=0.0)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    failure_reason = models.CharField(_("failure reason"), max_length=500, blank=True)
    reason = models.CharField(_("why it aired"), max_length=16, choices=Reason.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("as-run entry")
        verbose_name_plural = _("as-run log")
        indexes = [models.Index(fields=["station", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.title}"


class EmergencyTrack(models.Model):
    """The station's emergency playlist: what plays when nothing else can."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="emergency_tracks")
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("emergency track")
        verbose_name_plural = _("emergency playlist")
        constraints = [models.UniqueConstraint(fields=["station", "track"], name="emergency_unique")]

    def __str__(self) -> str:
        return str(self.track)
