"""What the multi-server tests share: a run's environment (its own database, queue and
channel prefix, so that runs sharing one Redis never meet), its users, its clean-up."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from benchmarks._redis import delete_keys
from tests import processes

SETTINGS = "tests.multinode.settings"
ASGI_APP = "tests.multinode.asgi:application"

MAKE_USERS = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

out = {}
for name, staff in (("alice", True), ("bob", False)):
    user = get_user_model().objects.create_user(name, password="x", is_staff=staff)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    out[name] = {"pk": user.pk, "session": session.session_key}
print(json.dumps(out))
"""


def run_python(env: dict[str, str], *args: str) -> str:
    return processes.run_python(SETTINGS, env, *args, timeout=120)


def new_run(redis_url: str, tmp: Path) -> dict[str, str]:
    """The environment of a new run's processes, its database migrated."""
    run = uuid.uuid4().hex[:10]
    values = {
        "MN_DB": str(tmp / "db.sqlite3"),
        "MN_REDIS": redis_url,
        "MN_QUEUE": f"mn-{run}",
        "MN_RUN": run,
    }
    run_python(values, "-m", "django", "migrate", "--noinput")
    return values


def end_run(env: dict[str, str]) -> None:
    """Delete what the run left in Redis (its keys only)."""
    delete_keys(env["MN_REDIS"], f"*mn-{env['MN_RUN']}*")


def make_users(env: dict[str, str]) -> dict[str, Any]:
    """alice (staff) and bob, each with a session: {"alice": {"pk", "session"}, ...}."""
    script = f"import django\ndjango.setup()\n{MAKE_USERS}"
    return dict(json.loads(run_python(env, "-c", script)))
