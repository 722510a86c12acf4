"""Imported first by `handlers/__init__.py`: a project's own top-level `actors` module
would be imported in place of the runtime; name it now rather than fail later."""

from envelope import check_not_shadowed

check_not_shadowed("envelope", "actors")
