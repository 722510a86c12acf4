"""The Origin check: a browser's socket is accepted only from the site's own origins.

A browser sends `Origin` with every websocket handshake, and the site's cookies with it,
whichever page opened the socket: without this check a page on another site could
open a socket as its visitor and act as them (cross-site websocket hijacking). Django's
CSRF protection does not cover websockets, so the consumer checks the `Origin` itself,
against `ALLOWED_HOSTS` (as Channels' `AllowedHostsOriginValidator` does) and
`ENVELOPE_ALLOWED_ORIGINS`, before it accepts. Clients that send no `Origin` (scripts,
servers, mobile apps) carry no browser's cookies: they are let in.

Patterns are matched by Channels' `OriginValidator`: a host (`example.com`), a domain
and its subdomains (`.example.com`), a full origin (`https://app.example.com:8443`,
scheme and port must match) or `*` (any origin: no check).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings as django_settings

#: What Django itself allows when DEBUG is on and ALLOWED_HOSTS is empty.
DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")


class OriginPolicy:
    """The origins a consumer accepts browsers' sockets from (built once, at `as_asgi()`)."""

    __slots__ = ("_validator", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._validator = OriginValidator(None, list(self.patterns))

    @classmethod
    def from_settings(
        cls, check_origin: bool, allowed_origins: Iterable[str]
    ) -> OriginPolicy | None:
        """`ALLOWED_HOSTS` (Django's DEBUG defaults when empty) plus `allowed_origins`;
        None when the check is off."""
        if not check_origin:
            return None
        hosts = list(getattr(django_settings, "ALLOWED_HOSTS", None) or ())
        if not hosts and django_settings.DEBUG:
            hosts = list(DEBUG_HOSTS)
        return cls([*hosts, *allowed_origins])

    def refused(self, scope: dict[str, Any]) -> str | None:
        """The `Origin` of the handshake when it is not allowed; None when it is (or when
        the client sent none)."""
        origin = None
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                origin = value.decode("latin1")
                break
        if origin is None:
            return None
        try:
            allowed = self._validator.validate_origin(urlparse(origin))
        except ValueError:  # not even a URL (e.g. "http://[")
            allowed = False
        return None if allowed else origin
