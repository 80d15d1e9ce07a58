"""Stations, roles, the audit journal and notifications: the rules other apps call."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms.models import model_to_dict
from django.utils import timezone

from radio.models import (
    ROLE_RANK,
    AuditEntry,
    Membership,
    Notification,
    Role,
    Station,
    WorkerHeartbeat,
)
from radio.notify import MessageType, station_notify

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser


# --- Stations -------------------------------------------------------------

def station_ensure_default() -> Station:
    """The station a fresh install starts with; created once, never overwritten."""
    station, created = Station.objects.get_or_create(
        slug=settings.ONAIR_DEFAULT_STATION_SLUG,
        defaults={
            "name": settings.ONAIR_DEFAULT_STATION_NAME,
            "time_zone": settings.TIME_ZONE,
            "output": settings.ONAIR_DEFAULT_OUTPUT,
            "icecast_mount": settings.ONAIR_DEFAULT_ICECAST_MOUNT,
        },
    )
    if created:
        logger.info("station=%s created as the default station", station.slug)
    return station


def stations_for(user: User) -> QuerySet[Station]:
    if not user.is_authenticated or not user.is_active:
        return Station.objects.none()
    if user.is_superuser:
        return Station.objects.all()
    return Station.objects.filter(memberships__user=user).distinct()


def role_of(user: User, station: Station) -> Role | None:
    """The user's role on the station; superusers are admins everywhere."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    role = (
        Membership.objects.filter(user=user, station=station).values_list("role", flat=True).first()
    )
    return Role(role) if role else None


def has_role(user: User, station: Station, minimum: Role) -> bool:
    return role_at_least(role_of(user, station), minimum)


def role_at_least(role: Role | None, minimum: Role) -> bool:
    """Whether `role` (None: not a member) reaches `minimum`."""
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def request_role(request: Any, station: Station) -> Role | None:
    """`role_of` for the request's user, looked up once per request and station.

    Kept on the request (Django's, under DRF's wrapper), never on the user: a WebSocket's
    user lives as long as the socket and must see a role taken away.
    """
    target = getattr(request, "_request", request)
    roles = target.__dict__.setdefault("_onair_roles", {})
    if station.pk not in roles:
        roles[station.pk] = role_of(request.user, station)
    return roles[station.pk]


def station_update(*, actor: User, station: Station, data: dict[str, Any]) -> Station:
    with transaction.atomic():
        before = snapshot(station)
        for field, value in data.items():
            setattr(station, field, value)
        station.full_clean()
        station.save()
        audit_record(actor=actor, station=station, action="station.update", obj=station,
                     before=before, after=snapshot(station))
    return station


def membership_set(*, actor: User, station: Station, user: AbstractBaseUser, role: Role) -> Membership:
    with transaction.atomic():
        membership = Membership.objects.filter(station=station, user=user).first()
        before = snapshot(membership) if membership else None
        if membership is None:
            membership = Membership.objects.create(station=station, user=user, role=role)
        else:
            membership.role = role
            membership.save(update_fields=["role"])
        user_staff_sync(user=user)
        audit_record(actor=actor, station=station, action="membership.set", obj=membership,
                     before=before, after=snapshot(membership))
    return membership


def membership_remove(*, actor: User, membership: Membership) -> None:
    with transaction.atomic():
        audit_record(actor=actor, station=membership.station, action="membership.remove",
                     obj=membership, before=snapshot(membership), after=None)
        membership.delete()
        user_staff_sync(user=membership.user)


# --- Admin access ---------------------------------------------------------

# Editors and admins curate in the Django admin; viewers use the control pages and the API.
ADMIN_ROLES = [r for r in Role if ROLE_RANK[r] >= ROLE_RANK[Role.EDITOR]]


def curates_somewhere(user: AbstractBaseUser) -> bool:
    return Membership.objects.filter(user=user, role__in=ADMIN_ROLES).exists()


def user_staff_sync(*, user: AbstractBaseUser) -> bool:
    """Make the staff flag follow the user's roles. Returns True if it changed.

    Staff while editor or admin of at least one station, not otherwise; what
    staff see in the admin stays limited to their stations (radio/admin.py).
    Superusers are left alone. Membership saves and deletes call this too
    (radio.signals), so any way of changing a role keeps the flag true.
    """
    if user.is_superuser:
        return False
    staff = curates_somewhere(user)
    changed = (get_user_model().objects.filter(pk=user.pk).exclude(is_staff=staff)
               .update(is_staff=staff) == 1)
    user.is_staff = staff
    if changed:
        logger.info("user=%s staff flag %s: %s", user.pk, "granted" if staff else "revoked",
                    "editor or admin of a station" if staff else "no longer editor or admin of any station")
    return changed


def admin_access_allowed(user: User) -> bool:
    """May this user use the Django admin? Checked on every admin request and at its sign-in."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if not user.is_staff:
        return False
    if curates_somewhere(user):
        return True
    logger.warning("user=%s has a stale staff flag (no editor or admin role): admin refused", user.pk)
    user_staff_sync(user=user)
    return False


# --- Audit journal --------------------------------------------------------

def snapshot(obj: models.Model) -> dict[str, Any]:
    """A JSON-safe picture of a row's fields for the audit journal."""
    data = model_to_dict(obj)
    return {key: _json_safe(value) for key, value in data.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, models.Model):
        return value.pk
    return str(value)


def audit_record(
    *,
    actor: User | None,
    station: Station | None,
    action: str,
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Journal one change. Call it inside the transaction that makes the change."""
    authenticated = actor is not None and actor.is_authenticated
    entry = AuditEntry.objects.create(
        station=station,
        actor=actor if authenticated else None,
        actor_repr=(actor.get_username() if authenticated else "system"),
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=before,
        after=after,
    )
    logger.info("station=%s audit=%s %s %s by %s", station.slug if station else "-", entry.pk,
                action, entry.object_repr, entry.actor_repr)
    return entry


# --- Notifications --------------------------------------------------------

def notification_data(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "level": notification.level,
        "message": notification.message,
        "source": notification.source,
        "created_by": notification.created_by.get_username() if notification.created_by else None,
        "created_at": notification.created_at.isoformat(),
    }


def notification_post(
    *,
    station: Station,
    message: str,
    level: str = Notification.Level.INFO,
    source: str = "staff",
    actor: User | None = None,
) -> Notification:
    """Store a notification and, once committed, push it to the station's clients."""
    with transaction.atomic():
        notification = Notification.objects.create(
            station=station, message=message, level=level, source=source,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        if actor is not None and actor.is_authenticated:
            audit_record(actor=actor, station=station, action="notification.post",
                         obj=notification, after=snapshot(notification))
        slug, data = station.slug, notification_data(notification)
        transaction.on_commit(lambda: station_notify(slug, MessageType.NOTIFICATION, data))
    return notification


# --- Worker leases and heartbeats ----------------------------------------

def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_acquire(*, key: str, owner: str, stale_after: float,
                  station: Station | None = None) -> WorkerHeartbeat | None:
    """Claim the single-instance lease `key`. Returns None if a live holder has it.

    A conditional UPDATE claims it (no lock held across the worker's life): the
    lease is free when released, when its holder stopped beating for
    `stale_after` seconds, or at once when its holder ran on this host and its
    process is gone (a crashed worker restarted by the supervisor need not wait
    out the stale age). A holder on another host is only judged by its beat.
    """
    now = timezone.now()
    fields = {"owner": owner, "started_at": now, "beat_at": now, "stopped_at": None, "status": {}}
    WorkerHeartbeat.objects.get_or_create(key=key, defaults={"station": station})
    claimed = (
        WorkerHeartbeat.objects.filter(key=key)
        .filter(models.Q(owner="") | models.Q(beat_at__isnull=True)
                | models.Q(beat_at__lt=now - timedelta(seconds=stale_after)))
        .update(**fields)
    )
    if claimed != 1:
        holder = WorkerHeartbeat.objects.filter(key=key).values_list("owner", flat=True).first()
        if not holder or not _owner_is_dead_here(holder):
            return None
        # Conditional on the dead owner: if another worker claimed it meanwhile, we lose.
        if WorkerHeartbeat.objects.filter(key=key, owner=holder).update(**fields) != 1:
            return None
        logger.info("lease=%s taken over from %s: its process no longer exists", key, holder)
    return WorkerHeartbeat.objects.get(key=key)


def _owner_is_dead_here(owner: str) -> bool:
    """True if `owner` (a `worker_identity()`) names a process of this host that is gone.

    Host names must be unique per PID namespace (Docker's default container
    hostname is), otherwise a live holder elsewhere could look dead here.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) <= 0:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        # Our own PID, yet another owner string: an earlier life of this PID
        # (a restarted container's worker often gets the same small PID).
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


def lease_holder(key: str) -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.filter(key=key).first()


def lease_renew(*, key: str, owner: str, status: dict[str, Any] | None = None) -> bool:
    """Beat. False means another process took the lease: the caller must stop."""
    fields: dict[str, Any] = {"beat_at": timezone.now()}
    if status is not None:
        fields["status"] = status
    return WorkerHeartbeat.objects.filter(key=key, owner=owner).update(**fields) == 1


def lease_release(*, key: str, owner: str) -> None:
    WorkerHeartbeat.objects.filter(key=key, owner=owner).update(owner="", stopped_at=timezone.now())


def heartbeat_age(beat: WorkerHeartbeat | None) -> float | None:
    if beat is None or beat.beat_at is None or not beat.owner:
        return None
    return (timezone.now() - beat.beat_at).total_seconds()
