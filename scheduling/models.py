"""The programme: calendars and their events, programme slots.

Instants are stored in UTC; a slot's times are wall-clock times in the station's zone
(scheduling/recurrence.py turns them into instants, DST included). What an event or a
slot plays is resolved to library rows (scheduling/content.py); what cannot be resolved
is kept with its reason (`problem`) and shown, never dropped.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from library.models import Genre, Playlist, Track
from radio.models import Station


class Mode(models.TextChoices):
    HARD = "hard", _("Hard: on the second, fading out what plays")
    SOFT = "soft", _("Soft: when the item before ends, back-timed to land on time")


class Fill(models.TextChoices):
    ROTATION = "rotation", _("Rotation until the end")
    NONE = "none", _("Nothing: auto-DJ carries on")


class ContentKind(models.TextChoices):
    TRACK = "track", _("Track")
    PLAYLIST = "playlist", _("Playlist")
    GENRE = "genre", _("Genre")
    SHOW = "show", _("Show")


class Content(models.Model):
    """What a slot or an event plays: one of a track, a playlist, a genre or a show."""

    content_kind = models.CharField(_("plays"), max_length=16, choices=ContentKind.choices, blank=True)
    track = models.ForeignKey(Track, verbose_name=_("track"), on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")
    playlist = models.ForeignKey(Playlist, verbose_name=_("playlist"), on_delete=models.SET_NULL,
                                 null=True, blank=True, related_name="+")
    genre = models.ForeignKey(Genre, verbose_name=_("genre"), on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")
    mode = models.CharField(_("start"), max_length=8, choices=Mode.choices, default=Mode.SOFT)
    fill = models.CharField(_("after the content"), max_length=8, choices=Fill.choices,
                            default=Fill.ROTATION)

    class Meta:
        abstract = True

    @property
    def content_label(self) -> str:
        target = self.track or self.playlist or self.genre
        kind = self.get_content_kind_display()
        return f"{kind}: {target}" if target else kind


class CalendarSource(models.Model):
    """A Google Calendar a station plays from, synced every `interval_seconds` by Celery beat."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="calendars")
    calendar_id = models.CharField(_("calendar id"), max_length=300,
                                   help_text=_("e.g. abc123@group.calendar.google.com"))
    name = models.CharField(_("name"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    interval_seconds = models.PositiveIntegerField(
        _("sync every (s)"), default=60, validators=[MinValueValidator(10), MaxValueValidator(60)])
    window_days = models.PositiveSmallIntegerField(
        _("days ahead"), default=14, validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("Recurring events are expanded this far ahead."))
    default_mode = models.CharField(_("events start"), max_length=8, choices=Mode.choices,
                                    default=Mode.SOFT)
    default_fill = models.CharField(_("after an event's content"), max_length=8, choices=Fill.choices,
                                    default=Fill.ROTATION)
    priority = models.SmallIntegerField(_("priority"), default=0)
    write_back = models.BooleanField(
        _("write programme slots back"), default=False,
        help_text=_("Mirror the station's programme slots into this calendar as managed events."))
    time_zone = models.CharField(_("calendar time zone"), max_length=64, blank=True, editable=False)
    window_start = models.DateTimeField(null=True, blank=True, editable=False)
    window_end = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_at = models.DateTimeField(_("last synced"), null=True, blank=True, editable=False)
    last_full_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)

    class Meta:
        ordering = ["station", "name"]
        constraints = [models.UniqueConstraint(fields=["station", "calendar_id"],
                                               name="calendarsource_unique")]
        verbose_name = _("calendar")
        verbose_name_plural = _("calendars")

    def __str__(self) -> str:
        return self.name or self.calendar_id

    @property
    def cursor_source(self) -> str:
        return f"cal{self.pk}"


class CalendarEvent(Content):
    """One event instance as Google sent it, and what the station makes of it."""

    class Status(models.TextChoices):
        RESOLVED = "resolved", _("Resolved")
        UNRESOLVED = "unresolved", _("Unresolved")
        NOTE = "note", _("Note (all day, never on air)")
        CANCELLED = "cancelled", _("Cancelled")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="calendar_events")
    calendar = models.ForeignKey(CalendarSource, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=1024)
    recurring_event_id = models.CharField(max_length=1024, blank=True)
    summary = models.CharField(_("title"), max_length=500, blank=True)
    description = models.TextField(_("description"), blank=True)
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True, db_index=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    all_day = models.BooleanField(_("all day"), default=False)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.UNRESOLVED)
    problem = models.TextField(_("problem"), blank=True)
    ref = models.CharField(_("asked for"), max_length=500, blank=True)
    priority = models.SmallIntegerField(_("priority"), default=0)
    updated = models.DateTimeField(null=True, blank=True, help_text=_("When Google last changed it."))
    raw = models.JSONField(default=dict, blank=True)
    warned = models.JSONField(default=list, blank=True, editable=False,
                              help_text=_("Preflight warnings already sent (24h, 1h)."))
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [models.UniqueConstraint(fields=["calendar", "event_id"],
                                               name="calendarevent_unique")]
        indexes = [models.Index(fields=["station", "status", "starts_at"])]
        verbose_name = _("calendar event")
        verbose_name_plural = _("calendar events")

    def __str__(self) -> str:
        return self.summary or self.event_id


class ProgramSlot(Content):
    """A local weekly schedule: these days, from start to end in the station's zone."""

    WEEKDAYS = [(0, _("Monday")), (1, _("Tuesday")), (2, _("Wednesday")), (3, _("Thursday")),
                (4, _("Friday")), (5, _("Saturday")), (6, _("Sunday"))]

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="program_slots")
    name = models.CharField(_("name"), max_length=200)
    weekdays = models.JSONField(_("days of the week"), default=list,
                                help_text=_("0 = Monday … 6 = Sunday."))
    start_time = models.TimeField(_("starts at"))
    end_time = models.TimeField(_("ends at"), help_text=_("At or before the start: the next day."))
    priority = models.SmallIntegerField(_("priority"), default=0)
    first_day = models.DateField(_("from"), null=True, blank=True)
    last_day = models.DateField(_("until"), null=True, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    show_name = models.CharField(_("show"), max_length=200, blank=True,
                                 help_text=_("For “show”: the show's name, as on its tracks."))
    # Write-back: the managed event mirroring this slot in the calendar.
    mirror_event_id = models.CharField(max_length=1024, blank=True, editable=False)
    mirror_calendar = models.ForeignKey(CalendarSource, on_delete=models.SET_NULL, null=True,
                                        blank=True, editable=False, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["station", "start_time", "name"]
        verbose_name = _("programme slot")
        verbose_name_plural = _("programme slots")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        days = self.weekdays if isinstance(self.weekdays, list) else None
        if not days or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            errors["weekdays"] = _("Pick at least one day (0 = Monday … 6 = Sunday).")
        if self.first_day and self.last_day and self.first_day > self.last_day:
            errors["last_day"] = _("The last day is before the first.")
        needs = {ContentKind.TRACK: self.track_id, ContentKind.PLAYLIST: self.playlist_id,
                 ContentKind.GENRE: self.genre_id, ContentKind.SHOW: self.show_name}
        if self.content_kind and not needs.get(self.content_kind):
            field = "show_name" if self.content_kind == ContentKind.SHOW else self.content_kind
            errors[field] = _("Say which %(kind)s the slot plays.") % {"kind": self.content_kind}
        for field in ("track", "playlist", "genre"):
            target = getattr(self, field)
            if target is not None and target.station_id != self.station_id:
                errors[field] = _("It belongs to another station.")
        if errors:
            raise ValidationError(errors)
