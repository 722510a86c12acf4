"""A module of the project named like one of the library's packages is a clear error.

A `handlers.py` at a project's root (natural after reading "chat/handlers.py") comes
first on `sys.path` and would be imported instead of the library's `handlers`: the
library then fails with a circular-import error about a partially initialised module.
`actors` and `handlers` call `check_not_shadowed` before importing their siblings, so
the error names the file and the fix instead.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

#: The directory holding the library's packages (`envelope`, `handlers`, `actors`).
ROOT = Path(__file__).resolve().parent.parent


class ShadowedPackageError(ImportError):
    """A module outside the library is found under the name of one of its packages."""


def check_not_shadowed(*names: str) -> None:
    """`ShadowedPackageError` naming the file when `names` are not the library's packages."""
    for name in names:
        origin = _origin(name)
        if origin is None:
            continue
        expected = ROOT / name / "__init__.py"
        if Path(origin).resolve() != expected:
            raise ShadowedPackageError(
                f"{origin} is imported as {name!r}, the name of an Envelope Router package "
                f"(expected {expected}). Rename it: an app's handlers go in the app's own "
                f"package (e.g. chat/handlers.py), never in a top-level module named "
                f"'envelope', 'handlers' or 'actors'.",
                name=name,
                path=str(origin),
            )


def _origin(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    # A namespace package (a directory without __init__.py) never wins over ours.
    return spec.origin if spec is not None and spec.has_location else None
