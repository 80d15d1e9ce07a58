from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_("“%(value)s” is not a known time zone."), params={"value": value}) from exc


class Station(models.Model):
    class Output(models.TextChoices):
        SOUNDCARD = "soundcard", _("Sound card")
        DUMMY = "dummy", _("No audio (headless)")
        ICECAST = "icecast", _("Icecast stream")

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone],
        help_text=_("The zone the schedule is written in, e.g. Asia/Jerusalem."),
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    output = models.CharField(_("audio output"), max_length=16, choices=Output.choices,
                              default=Output.DUMMY)
    output_device = models.CharField(
        _("sound card device"), max_length=200, blank=True,
        help_text=_("VLC audio device for the sound-card output; empty uses the default."),
    )
    icecast_mount = models.CharField(
        _("Icecast mount"), max_length=100, blank=True, default="",
        validators=[RegexValidator(r"^[A-Za-z0-9._-]*$", _("Letters, digits, dot, dash, underscore."))],
        help_text=_("Mount point without the slash, e.g. radio.mp3. "
                    "Host and source password come from the environment."),
    )
    icecast_bitrate = models.PositiveIntegerField(_("stream bitrate (kbit/s)"), default=128)
    public_now_playing = models.BooleanField(
        _("public now-playing"), default=False,
        help_text=_("Anyone may read what is on air (for website widgets), without signing in."))
    queue_min_depth = models.PositiveSmallIntegerField(
        _("auto-DJ queue depth"), default=3,
        help_text=_("Auto-DJ tops the queue up to this many items."))
    no_repeat_hours = models.PositiveSmallIntegerField(
        _("no repeat within (hours)"), default=3,
        help_text=_("Auto-DJ does not replay a track within this many hours."))
    silence_alert_seconds = models.PositiveSmallIntegerField(
        _("silence alert after (s)"), default=10)
    # Soft starts (scheduling/backtiming.py, the playback worker).
    soft_start_tolerance = models.PositiveSmallIntegerField(
        _("soft start tolerance (s)"), default=10,
        help_text=_("A soft programme may start this much early rather than wait for one more song."))
    fade_to_fit = models.BooleanField(
        _("fade to fit"), default=False,
        help_text=_("When the fill before a soft start would overrun, fade it out on time instead."))
    fade_to_fit_max = models.PositiveSmallIntegerField(
        _("fade to fit at most (s)"), default=15,
        help_text=_("Never fade more than this much of an item to start on time."))
    # Broadcast sound (playback/loudness.py, applied by the playback worker on every output).
    loudness_normalise = models.BooleanField(
        _("loudness normalisation"), default=True,
        help_text=_("Play every item at the target loudness, from the library's analysis."))
    loudness_target = models.FloatField(
        _("target loudness (LUFS)"), default=-16.0,
        validators=[MinValueValidator(-36.0), MaxValueValidator(-6.0)],
        help_text=_("Integrated loudness (EBU R128) every item is brought to."))
    true_peak_ceiling = models.FloatField(
        _("true peak ceiling (dBTP)"), default=-1.0,
        validators=[MinValueValidator(-12.0), MaxValueValidator(0.0)],
        help_text=_("No item is raised so far that its measured true peak passes this."))
    jingle_offset = models.FloatField(
        _("jingles and station IDs (dB)"), default=0.0,
        validators=[MinValueValidator(-12.0), MaxValueValidator(12.0)],
        help_text=_("Added to the target for jingles."))
    commercial_offset = models.FloatField(
        _("commercials (dB)"), default=0.0,
        validators=[MinValueValidator(-12.0), MaxValueValidator(12.0)],
        help_text=_("Added to the target for commercials."))
    show_offset = models.FloatField(
        _("shows and newsflashes (dB)"), default=0.0,
        validators=[MinValueValidator(-12.0), MaxValueValidator(12.0)],
        help_text=_("Added to the target for shows and newsflashes."))
    crossfade = models.FloatField(
        _("crossfade (s)"), default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(10.0)],
        help_text=_("Songs overlap by this much, the next one fading in as the last fades out; jingles and "
                    "commercials always join end to end. 0: every join end to end, sample-exact."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("station")
        verbose_name_plural = _("stations")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.output == self.Output.ICECAST and not self.icecast_mount:
            raise ValidationError({"icecast_mount": _("An Icecast output needs a mount.")})


class Role(models.TextChoices):
    VIEWER = "viewer", _("Viewer")
    EDITOR = "editor", _("Editor")
    ADMIN = "admin", _("Admin")


ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


class Membership(models.Model):
    """A user's role on one station. No row means no access to that station."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["station", "user"], name="membership_unique_per_station")
        ]
        ordering = ["station", "user"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.station}: {self.get_role_display()}"


class AuditEntry(models.Model):
    """Who changed what, when, with the values before and after."""

    station = models.ForeignKey(Station, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="audit_entries")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")
    actor_repr = models.CharField(max_length=150, blank=True,
                                  help_text=_("Kept when the user is deleted."))
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit journal")
        indexes = [models.Index(fields=["station", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_repr} {self.action} {self.object_repr}"


class Notification(models.Model):
    """A message for a station's operators: a notice from staff or an alert from the system."""

    class Level(models.TextChoices):
        INFO = "info", _("Info")
        WARNING = "warning", _("Warning")
        ERROR = "error", _("Error")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="notifications")
    level = models.CharField(_("level"), max_length=16, choices=Level.choices, default=Level.INFO)
    message = models.CharField(_("message"), max_length=500)
    source = models.CharField(_("source"), max_length=64, default="staff",
                              help_text=_("staff, or the part of the system that raised it."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")

    def __str__(self) -> str:
        return self.message


class WorkerHeartbeat(models.Model):
    """Liveness and the single-instance lease of a long-running process.

    `key` is `playback:<slug>` for a station's playback worker. The holder renews
    `beat_at`; a row whose beat is older than the stale age may be taken over.
    """

    key = models.CharField(max_length=100, unique=True)
    station = models.ForeignKey(Station, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="+")
    owner = models.CharField(max_length=100, blank=True,
                             help_text=_("host:pid:nonce of the holder; empty when released."))
    started_at = models.DateTimeField(null=True, blank=True)
    beat_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    status = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return self.key


# --- Google access and sync runs --------------------------------------------------
# Moved here from `library` (migrations radio 0003 / library 0002 keep the rows):
# Google access is the ground floor that Drive, Gmail and the calendar sync share.


class GoogleCredential(models.Model):
    """An OAuth refresh token an admin connected for a station, stored encrypted."""

    station = models.OneToOneField(Station, on_delete=models.CASCADE,
                                   related_name="google_credential")
    email = models.EmailField(_("Google account"), blank=True)
    scopes = models.JSONField(default=list)
    refresh_token_encrypted = models.TextField()
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    connected_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("Google connection")
        verbose_name_plural = _("Google connections")

    def __str__(self) -> str:
        return self.email or str(self.station)


class SyncRun(models.Model):
    """One run of a sync (radio/sync.py): always ends ok or failed, with its counts."""

    class Kind(models.TextChoices):
        DRIVE_FULL = "drive_full", _("Drive: full crawl")
        DRIVE_CHANGES = "drive_changes", _("Drive: changes")
        DRIVE_DOWNLOAD = "drive_download", _("Drive: downloads")
        GMAIL = "gmail", _("Gmail import")
        CALENDAR = "calendar", _("Calendar sync")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        OK = "ok", _("Finished")
        FAILED = "failed", _("Failed")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    progress = models.JSONField(_("progress"), default=dict, blank=True)
    requests = models.PositiveIntegerField(_("Google requests"), default=0)
    error = models.TextField(_("error"), blank=True)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")

    # Not stored: set by the harness when the failure is worth another try soon
    # (rate limit, Google 5xx, network), in seconds. Tasks read it to re-queue.
    retry_after: float | None = None

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M}"


class SyncCursor(models.Model):
    """Where an incremental sync resumes (Drive's changes page token, a calendar's syncToken)."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16)
    token = models.CharField(max_length=500)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["station", "source"],
                                               name="synccursor_unique")]

    def __str__(self) -> str:
        return f"{self.source}@{self.station_id}: {self.token}"
