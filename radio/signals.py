"""Signal receivers of the radio app, connected in RadioConfig.ready().

The rules live in services (staff flag) and radio.auth (tokens, lockout log);
these only make sure every way of changing a row applies them — the admin,
the API, a shell, a cascade.
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from radio.auth import log_lockout, revoke_tokens_on_password_change
from radio.models import Membership
from radio.notify import user_access_changed


def _membership_changed(sender, instance: Membership, **kwargs) -> None:
    from radio.services import user_staff_sync

    if kwargs.get("raw"):
        return
    user = get_user_model().objects.filter(pk=instance.user_id).first()
    if user is not None:
        user_staff_sync(user=user)
    _access_changed(instance.user_id)


def _access_changed(user_id: int) -> None:
    """The user's open station sockets check their access once this is committed (a removed
    membership closes them with 4403 at once, not at the next periodic check)."""
    transaction.on_commit(lambda: user_access_changed(user_id))


def _user_saved(sender, instance, created: bool = False, update_fields=None, **kwargs) -> None:
    # Deactivated, or no longer a superuser: the sockets look again. A sign-in only
    # stamps last_login: nothing to check.
    if created or kwargs.get("raw") or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    _access_changed(instance.pk)


def connect() -> None:
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="radio.membership.staff.save")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="radio.membership.staff.delete")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="radio.user.access.save")
    pre_save.connect(revoke_tokens_on_password_change, sender=get_user_model(),
                     dispatch_uid="radio.user.password.tokens")
    user_locked_out.connect(log_lockout, dispatch_uid="radio.signin.lockout.log")
