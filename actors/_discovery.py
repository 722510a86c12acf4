"""Handler modules found at start-up, so that forgetting `import chat.handlers` is not a
silent `unknown_type`: like Django's admin autodiscovery, `<app>.handlers` of every
installed app is imported when Django starts (`ActorsConfig.ready()`), before
`asgi.py` builds its consumers. `ENVELOPE_AUTODISCOVER = False` turns it off.

Django's own apps are skipped (`django.contrib.staticfiles.handlers` is not ours).
An error in a handlers module is raised at start-up, where it belongs.
"""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.utils.module_loading import module_has_submodule

MODULE = "handlers"


def discover_handlers() -> list[str]:
    """Import `<app>.handlers` of every installed app that has one; their names."""
    found = []
    for app_config in apps.get_app_configs():
        if app_config.name.startswith("django."):
            continue
        if module_has_submodule(app_config.module, MODULE):
            name = f"{app_config.name}.{MODULE}"
            import_module(name)
            found.append(name)
    return found
