"""The contract over HTTP, for a frontend's dev server or the docs (off in production).

    # urls.py
    from actors.contract.views import schema_view
    urlpatterns = [path("api/schema", schema_view)]

`GET api/schema` answers the AsyncAPI 3.0 document; `?format=jsonschema` the JSON Schema
of every model, `?format=ts` contract.ts; `?path=/ws/` chooses the consumer when the
project serves several. It answers 404 unless `ENVELOPE_SCHEMA_VIEW` is true, which it
is by default only when `DEBUG` is: a production site does not publish its message
types unless it says so. `ENVELOPE_SCHEMA_TITLE` and `ENVELOPE_SCHEMA_VERSION` set the
document's `info`.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from actors.contract._build import (
    DEFAULT_TITLE,
    DEFAULT_VERSION,
    Artefacts,
    ContractOptions,
    artefacts,
    project_contract,
)

SETTING = "ENVELOPE_SCHEMA_VIEW"


def schema_view_enabled() -> bool:
    return bool(getattr(settings, SETTING, settings.DEBUG))


@functools.lru_cache(maxsize=8)
def _built(options: ContractOptions) -> Artefacts:
    # Routers and topics are declared at import: a contract is built once per process.
    return artefacts(project_contract(options))


@require_GET
def schema_view(request: HttpRequest) -> HttpResponse:
    if not schema_view_enabled():
        raise Http404(f"the contract is not published ({SETTING} is off)")
    kind = request.GET.get("format", "asyncapi")
    try:
        made = _built(
            ContractOptions(
                app=getattr(settings, "ASGI_APPLICATION", None),
                path=request.GET.get("path") or None,
                title=getattr(settings, "ENVELOPE_SCHEMA_TITLE", DEFAULT_TITLE),
                version=getattr(settings, "ENVELOPE_SCHEMA_VERSION", DEFAULT_VERSION),
            )
        )
    except ImproperlyConfigured as exc:
        return JsonResponse({"code": "no_consumer", "message": str(exc)}, status=404)
    if kind == "asyncapi":
        return JsonResponse(made.asyncapi)
    if kind == "jsonschema":
        return JsonResponse(made.json_schema)
    if kind == "ts":
        return HttpResponse(made.typescript, content_type="text/plain; charset=utf-8")
    return JsonResponse(
        {"code": "bad_format", "message": "format is one of asyncapi, jsonschema, ts"},
        status=400,
    )
