"""Signal receivers of the radio app, connected in RadioConfig.ready().

The rules live in services (staff flag) and radio.auth (tokens, lockout log);
these only make sure every way of changing a row applies them — the admin,
the API, a shell, a cascade.
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save, pre_save

from radio.auth import log_lockout, revoke_tokens_on_password_change
from radio.models import Membership


def _membership_changed(sender, instance: Membership, **kwargs) -> None:
    from radio.services import user_staff_sync

    if kwargs.get("raw"):
        return
    user = get_user_model().objects.filter(pk=instance.user_id).first()
    if user is not None:
        user_staff_sync(user=user)


def connect() -> None:
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="radio.membership.staff.save")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="radio.membership.staff.delete")
    pre_save.connect(revoke_tokens_on_password_change, sender=get_user_model(),
                     dispatch_uid="radio.user.password.tokens")
    user_locked_out.connect(log_lockout, dispatch_uid="radio.signin.lockout.log")
