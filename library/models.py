"""The music library: tracks and where they come from (Drive, Gmail, uploads, folders)."""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from library.search import track_search_text
from radio.models import Station


def normalise(text: str) -> str:
    """Lower-case, accents and punctuation removed, spaces collapsed: for likely-duplicate matching."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text)  # (Remastered), [Live] …
    text = re.sub(r"[^\w]+", " ", text)
    return " ".join(text.split())


class Genre(models.Model):
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="genres")
    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["station", "name"], name="genre_unique_name")]
        verbose_name = _("genre")
        verbose_name_plural = _("genres")

    def __str__(self) -> str:
        return self.name


class TrackQuerySet(models.QuerySet):
    def playable(self) -> TrackQuerySet:
        """Tracks that can go on air: `Track.is_playable`, as a database filter."""
        return (self.filter(enabled=True, missing_since__isnull=True, analysis=Track.Analysis.OK,
                            file_checksum=models.F("checksum"))
                .exclude(file=""))


class Track(models.Model):
    class Kind(models.TextChoices):
        SONG = "song", _("Song")
        JINGLE = "jingle", _("Jingle")
        COMMERCIAL = "commercial", _("Commercial")
        SHOW = "show", _("Show")
        NEWSFLASH = "newsflash", _("Newsflash")
        SAMPLE = "sample", _("Sample")

    class Source(models.TextChoices):
        DRIVE = "drive", _("Google Drive")
        GMAIL = "gmail", _("Gmail")
        UPLOAD = "upload", _("Upload")
        FOLDER = "folder", _("Local folder")

    class Analysis(models.TextChoices):
        PENDING = "pending", _("Pending")
        OK = "ok", _("Analysed")
        FAILED = "failed", _("Unplayable")

    # Fields a person may edit by hand; once edited, a sync never overwrites them.
    EDITABLE_FIELDS = ("kind", "title", "artist", "album", "genre", "year", "language",
                       "cue_in", "cue_out", "enabled", "show_name", "batch")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="tracks")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.SONG,
                            db_index=True)
    title = models.CharField(_("title"), max_length=300)
    artist = models.CharField(_("artist"), max_length=300, blank=True)
    album = models.CharField(_("album"), max_length=300, blank=True)
    genre = models.ForeignKey(Genre, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="tracks", verbose_name=_("genre"))
    year = models.PositiveSmallIntegerField(_("year"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    show_name = models.CharField(_("show"), max_length=200, blank=True)
    batch = models.CharField(_("batch"), max_length=100, blank=True,
                             help_text=_("Commercials: the Batch-N folder they came in."))

    duration = models.FloatField(_("duration (s)"), null=True, blank=True)
    cue_in = models.FloatField(_("cue in (s)"), default=0.0)
    cue_out = models.FloatField(_("cue out (s)"), null=True, blank=True)
    loudness_lufs = models.FloatField(_("integrated loudness (LUFS)"), null=True, blank=True)
    true_peak_dbtp = models.FloatField(_("true peak (dBTP)"), null=True, blank=True)
    bitrate = models.PositiveIntegerField(_("bitrate (bit/s)"), null=True, blank=True)
    sample_rate = models.PositiveIntegerField(_("sample rate (Hz)"), null=True, blank=True)
    mime_type = models.CharField(_("MIME type"), max_length=100, blank=True)
    size = models.BigIntegerField(_("size (bytes)"), null=True, blank=True)
    checksum = models.CharField(_("MD5"), max_length=32, blank=True, db_index=True,
                                help_text=_("MD5 of the content (Drive's md5Checksum)."))

    # Local cache: content-addressed under MEDIA_ROOT (library/storage.py). Empty until
    # downloaded; `file_checksum` is the MD5 of what the cached file holds.
    file = models.CharField(_("cached file"), max_length=500, blank=True)
    file_checksum = models.CharField(max_length=32, blank=True)
    cover = models.CharField(_("cover art"), max_length=500, blank=True)
    # A download that failed belongs to its track (library/services.py, track_download_failed):
    # the reason, how many times in a row, when to try again (empty: not before the content
    # changes) and the content (MD5) it failed for: new content is tried at once.
    download_error = models.TextField(_("download error"), blank=True)
    download_failures = models.PositiveIntegerField(_("failed downloads in a row"), default=0)
    download_retry_at = models.DateTimeField(_("next download attempt"), null=True, blank=True,
                                             db_index=True)
    download_error_checksum = models.CharField(max_length=32, blank=True)

    source = models.CharField(_("source"), max_length=16, choices=Source.choices, db_index=True)
    source_id = models.CharField(_("source id"), max_length=300, blank=True)
    # Drive: the folders below the watched root and the file's name, joined by `/` with any
    # `/` or `\` inside a name escaped by `\` (library/drive_tree.py join_path), so a name
    # such as "AC/DC" is never read as two folders. `source_name` is the name as Drive has it.
    source_path = models.TextField(_("source path"), blank=True)
    source_name = models.TextField(_("source file name"), blank=True)
    source_parents = models.JSONField(default=list, blank=True,
                                      help_text=_("Every Drive parent of the file (legacy files "
                                                  "may have several)."))
    folder_fields = models.JSONField(default=list, blank=True,
                                     help_text=_("Fields the Drive folders decided last time."))
    source_parent = models.CharField(max_length=200, blank=True,
                                     help_text=_("Drive folder id holding the file."))
    source_modified = models.DateTimeField(_("source modified"), null=True, blank=True)

    enabled = models.BooleanField(_("enabled"), default=True)
    missing_since = models.DateTimeField(_("missing since"), null=True, blank=True)
    analysis = models.CharField(_("analysis"), max_length=16, choices=Analysis.choices,
                                default=Analysis.PENDING)
    analysis_error = models.TextField(_("analysis error"), blank=True)
    play_count = models.PositiveIntegerField(_("play count"), default=0)
    last_played_at = models.DateTimeField(_("last played"), null=True, blank=True)
    edited_fields = models.JSONField(_("edited by hand"), default=list, blank=True)
    dedupe_key = models.CharField(max_length=600, blank=True, db_index=True,
                                  help_text=_("Normalised artist + title."))
    # Title, artist and album as search compares them (library/search.py); on PostgreSQL a
    # trigram GIN index (migration 0005) serves `LIKE '%word%'` on it.
    search_text = models.TextField(blank=True, default="", editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TrackQuerySet.as_manager()

    class Meta:
        ordering = ["artist", "title"]
        verbose_name = _("track")
        verbose_name_plural = _("tracks")
        constraints = [
            models.UniqueConstraint(fields=["station", "source", "source_id"],
                                    condition=~models.Q(source_id=""),
                                    name="track_unique_source_id"),
        ]
        indexes = [
            models.Index(fields=["station", "source", "source_parent"]),
            models.Index(fields=["station", "kind", "enabled"]),
            # The API's default order and `?genre=…&ordering=title` read pages off an index.
            models.Index(fields=["station", "artist", "title"], name="track_station_artist_title"),
            models.Index(fields=["station", "genre", "title"], name="track_station_genre_title"),
        ]

    def __str__(self) -> str:
        return f"{self.artist} – {self.title}" if self.artist else self.title

    def save(self, *args, **kwargs) -> None:
        self.derive_keys()
        fields = kwargs.get("update_fields")
        if fields is not None:
            # Only a save that writes artist, title or album may write the keys derived from them.
            kwargs["update_fields"] = {*fields, *self.derived_fields(fields), "updated_at"}
        super().save(*args, **kwargs)

    def derive_keys(self) -> None:
        """Set the columns derived from title, artist and album (bulk_create/bulk_update skip save())."""
        self.dedupe_key = f"{normalise(self.artist)}|{normalise(self.title)}"
        self.search_text = track_search_text(self.title, self.artist, self.album)

    @staticmethod
    def derived_fields(fields) -> set[str]:
        """The derived columns a write of `fields` must write too."""
        fields = set(fields)
        return ({"dedupe_key"} if {"artist", "title"} & fields else set()) | (
            {"search_text"} if {"artist", "title", "album"} & fields else set())

    @property
    def is_playable(self) -> bool:
        """Can go on air: enabled, present, analysed fine and cached locally.

        The same rule as `Track.objects.playable()`: change both together.
        """
        return (self.enabled and self.missing_since is None and self.analysis == self.Analysis.OK
                and bool(self.file) and self.file_checksum == self.checksum)


class DriveFolder(models.Model):
    """A Drive folder: a watched root, or one found beneath it, and what it means.

    The conventions (library/conventions.py) derive kind, genre, artist, show and
    batch from the path; the override fields, set in the admin, win over them.
    """

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="drive_folders")
    folder_id = models.CharField(_("Drive folder id"), max_length=200)
    name = models.CharField(_("name"), max_length=300, blank=True)
    parent_id = models.CharField(max_length=200, blank=True)
    is_root = models.BooleanField(_("watched root"), default=False,
                                  help_text=_("Sync this folder and everything beneath it."))
    trashed = models.BooleanField(default=False)
    kind_override = models.CharField(_("kind override"), max_length=16, blank=True,
                                     choices=Track.Kind.choices)
    genre_override = models.ForeignKey(Genre, on_delete=models.SET_NULL, null=True, blank=True,
                                       related_name="+", verbose_name=_("genre override"))
    artist_override = models.CharField(_("artist override"), max_length=300, blank=True)
    show_override = models.CharField(_("show override"), max_length=200, blank=True)
    batch_override = models.CharField(_("batch override"), max_length=100, blank=True)

    class Meta:
        ordering = ["station", "name"]
        verbose_name = _("Drive folder")
        verbose_name_plural = _("Drive folders")
        constraints = [models.UniqueConstraint(fields=["station", "folder_id"],
                                               name="drivefolder_unique_id")]
        indexes = [models.Index(fields=["station", "parent_id"])]

    def __str__(self) -> str:
        return self.name or self.folder_id


class ClassificationRule(models.Model):
    """Gmail import: a word in the subject, file name or sender suggests a kind/genre."""

    class Field(models.TextChoices):
        SUBJECT = "subject", _("Subject")
        FILENAME = "filename", _("File name")
        SENDER = "sender", _("Sender")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="gmail_rules")
    field = models.CharField(_("looks at"), max_length=16, choices=Field.choices)
    pattern = models.CharField(_("contains"), max_length=200,
                               help_text=_("Case-insensitive text to look for."))
    kind = models.CharField(_("kind"), max_length=16, choices=Track.Kind.choices, blank=True)
    genre = models.ForeignKey(Genre, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="+")
    priority = models.PositiveSmallIntegerField(_("priority"), default=100,
                                                help_text=_("Lower numbers are tried first."))

    class Meta:
        ordering = ["priority", "id"]
        verbose_name = _("Gmail classification rule")
        verbose_name_plural = _("Gmail classification rules")

    def __str__(self) -> str:
        return f"{self.get_field_display()} ∋ {self.pattern}"


class GmailImport(models.Model):
    """One audio attachment seen in Gmail, imported once (message id + part id)."""

    class Status(models.TextChoices):
        IMPORTED = "imported", _("Imported")
        REVIEW = "review", _("Needs review")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="gmail_imports")
    message_id = models.CharField(max_length=200)
    part_id = models.CharField(max_length=100)
    filename = models.CharField(_("file name"), max_length=300)
    sender = models.CharField(_("from"), max_length=300, blank=True)
    subject = models.CharField(_("subject"), max_length=500, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    suggested_kind = models.CharField(max_length=16, choices=Track.Kind.choices, blank=True)
    suggested_genre = models.ForeignKey(Genre, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    reason = models.TextField(_("reason"), blank=True)
    stash = models.CharField(max_length=500, blank=True,
                             help_text=_("Where the file waits while under review."))
    checksum = models.CharField(max_length=32, blank=True)
    track = models.ForeignKey(Track, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("Gmail attachment")
        verbose_name_plural = _("Gmail attachments")
        constraints = [models.UniqueConstraint(fields=["station", "message_id", "part_id"],
                                               name="gmailimport_unique_part")]

    def __str__(self) -> str:
        return self.filename


class Playlist(models.Model):
    """What a show, a slot or a calendar event can play: a static list, or a saved filter (smart).

    A static playlist's items play in order, shuffled per pass, or at random without a repeat
    until all have played (library/playlist_order.py; the cursor and cycle are kept here).
    A smart playlist is a filter over the station's playable tracks (library/playlists.py).
    """

    class Kind(models.TextChoices):
        STATIC = "static", _("Static (a list of tracks)")
        SMART = "smart", _("Smart (a saved filter)")

    class Order(models.TextChoices):
        IN_ORDER = "in_order", _("In order")
        SHUFFLE = "shuffle", _("Shuffled, each once per pass")
        RANDOM = "random", _("Random, no repeat until all have played")

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="playlists")
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, allow_unicode=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.STATIC)
    order = models.CharField(_("order"), max_length=10, choices=Order.choices, default=Order.IN_ORDER)
    # Smart: every rule that is set must hold.
    kinds = models.JSONField(_("track kinds"), default=list, blank=True)
    genres = models.ManyToManyField(Genre, verbose_name=_("genres"), blank=True, related_name="playlists")
    artists = models.JSONField(_("artists"), default=list, blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    year_from = models.PositiveSmallIntegerField(_("from year"), null=True, blank=True)
    year_to = models.PositiveSmallIntegerField(_("to year"), null=True, blank=True)
    min_seconds = models.FloatField(_("shortest (s)"), null=True, blank=True)
    max_seconds = models.FloatField(_("longest (s)"), null=True, blank=True)
    not_aired_hours = models.PositiveIntegerField(_("not aired within (hours)"), null=True, blank=True)
    limit = models.PositiveIntegerField(_("at most (tracks)"), null=True, blank=True)
    # Where a static playlist's order stands (library/playlist_order.py).
    cursor = models.PositiveIntegerField(default=0, editable=False)
    cycle = models.JSONField(default=list, blank=True, editable=False)
    last_track = models.ForeignKey(Track, on_delete=models.SET_NULL, null=True, blank=True, editable=False,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["station", "slug"], name="playlist_unique_slug")]
        verbose_name = _("playlist")
        verbose_name_plural = _("playlists")

    def __str__(self) -> str:
        return self.name


class PlaylistItem(models.Model):
    playlist = models.ForeignKey(Playlist, on_delete=models.CASCADE, related_name="items")
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="playlist_items")
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("playlist item")
        verbose_name_plural = _("playlist items")

    def __str__(self) -> str:
        return f"{self.position}: {self.track}"
