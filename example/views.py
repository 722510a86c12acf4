"""The console page and the demo's log in / out. The console's message types come from
the contract (`actors.contract.views.schema_view` at `api/schema`)."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST


def _trace_log_for_humans() -> str:
    """The trace log's path as a user would type it from the current directory."""
    path = Path(getattr(settings, "ENVELOPE_TRACE_LOG", "") or "trace.log")
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def _user_name(request: HttpRequest) -> str | None:
    user = request.user
    return user.get_username() if user.is_authenticated else None


@require_GET
@ensure_csrf_cookie
def console(request: HttpRequest) -> HttpResponse:
    """The browser console: connect, log in, send any registered message, watch frames."""
    return render(
        request,
        "example/console.html",
        {
            "user_name": _user_name(request),
            "demo_username": settings.DEMO_USERNAME,
            "demo_password": settings.DEMO_PASSWORD,
            "trace_log": _trace_log_for_humans(),
        },
    )


@require_GET
def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": _user_name(request)})


@require_POST
def login_view(request: HttpRequest) -> JsonResponse:
    """Session log in (form fields `username`, `password`; CSRF token in `X-CSRFToken`).

    A websocket reads the session when it connects: reconnect to act as the new user.
    """
    user = authenticate(
        request,
        username=request.POST.get("username", ""),
        password=request.POST.get("password", ""),
    )
    if user is None:
        return JsonResponse(
            {"code": "bad_credentials", "message": "Wrong user name or password."}, status=400
        )
    login(request, user)
    return JsonResponse({"user": user.get_username()})


@require_POST
def logout_view(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({"user": None})
