"""Imported first by `actors/__init__.py`: before anything imports `handlers`, make sure
it (and `envelope`) is the library's own package and not a project's module of that name,
which would otherwise fail as a confusing circular import."""

import sys

try:
    from envelope import check_not_shadowed
except ImportError as exc:  # `envelope` itself is a project's module
    found = exc.path or getattr(sys.modules.get("envelope"), "__file__", None)
    raise ImportError(
        f"{found or 'a module of the project'} is imported as 'envelope', the name of an "
        "Envelope Router package. Rename it: an app's messages and handlers go in the "
        "app's own package (e.g. chat/messages.py), never in a top-level module named "
        f"'envelope', 'handlers' or 'actors'. ({exc})",
        name="envelope",
        path=found,
    ) from exc

check_not_shadowed("envelope", "handlers")
