"""The language of a connection: cookie, then `Accept-Language`, then `LANGUAGE_CODE`."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _supported(code: str | None) -> str | None:
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


def language_from_scope(scope: dict[str, Any]) -> str:
    """What Django's `LocaleMiddleware` would pick for the websocket's HTTP handshake."""
    cookies = scope.get("cookies")
    if cookies is None:
        raw = _header(scope, b"cookie")
        if raw:
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(raw)
            except Exception:  # a malformed cookie header is no reason to refuse
                parsed = SimpleCookie()
            cookies = {k: morsel.value for k, morsel in parsed.items()}
        else:
            cookies = {}
    chosen = _supported(cookies.get(settings.LANGUAGE_COOKIE_NAME))
    if chosen:
        return chosen
    accept = _header(scope, b"accept-language")
    if accept:
        for code, _quality in parse_accept_lang_header(accept):
            if code == "*":
                break
            chosen = _supported(code)
            if chosen:
                return chosen
    return _supported(settings.LANGUAGE_CODE) or settings.LANGUAGE_CODE
