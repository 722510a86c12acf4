"""The user of a connection or a job: its primary key, and loading it again by that key."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model


def user_pk(user: Any) -> Any:
    """The primary key of an authenticated `user`; None for anonymous or no user."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "pk", None)


def load_user(pk: Any) -> Any:
    """The user with primary key `pk` as the database has it now, if they may still
    authenticate (`is_active`, as Django's `ModelBackend` requires); else (no pk,
    deleted or deactivated since) an `AnonymousUser`. For worker code: it queries the
    database."""
    # Imported here: `django.contrib.auth.models` defines models, which cannot be imported
    # while the app registry is being populated, and `actors` is imported then.
    from django.contrib.auth.models import AnonymousUser

    if pk is None:
        return AnonymousUser()
    user = get_user_model()._default_manager.filter(pk=pk).first()
    if user is None or not getattr(user, "is_active", True):
        return AnonymousUser()
    return user
