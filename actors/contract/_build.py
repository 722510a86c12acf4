"""From a Django project to its contract: find the consumer, build every artefact."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from actors.contract._asyncapi import asyncapi_document
from actors.contract._discover import ServedConsumer, load_object, served_consumers
from actors.contract._model import Contract, build_contract
from actors.contract._schemas import ModelSchemas, standalone
from actors.contract._typescript import typescript_module

DEFAULT_TITLE = "Envelope Router API"
DEFAULT_VERSION = "0.0.0"


@dataclass(frozen=True, slots=True)
class ContractOptions:
    app: str | None = None  # "module:attribute" of the ASGI app; default ASGI_APPLICATION
    path: str | None = None  # which consumer, when the app serves several
    title: str = DEFAULT_TITLE
    version: str = DEFAULT_VERSION
    server: str | None = None  # "ws://host:port" for the document's `servers`


def find_consumer(options: ContractOptions) -> ServedConsumer:
    """The consumer the contract is about; `ImproperlyConfigured` naming the fix if unclear."""
    dotted = options.app or getattr(django_settings, "ASGI_APPLICATION", None)
    if not dotted:
        raise ImproperlyConfigured(
            "no ASGI application: set ASGI_APPLICATION or pass --app module:attribute"
        )
    found = served_consumers(load_object(dotted))
    if options.path is not None:
        found = [c for c in found if c.path == options.path]
    if not found:
        where = f" at {options.path}" if options.path else ""
        raise ImproperlyConfigured(f"{dotted} serves no EnvelopeConsumer{where}")
    if len(found) > 1:
        paths = ", ".join(c.path for c in found)
        raise ImproperlyConfigured(
            f"{dotted} serves EnvelopeConsumers at {paths}: choose one with --path "
            "(schema_view: ?path=)"
        )
    return found[0]


def project_contract(options: ContractOptions) -> Contract:
    consumer = find_consumer(options)
    return build_contract(
        consumer.config.routes,
        consumer.config.settings,
        path=consumer.path,
        title=options.title,
        version=options.version,
    )


@dataclass(frozen=True, slots=True)
class Artefacts:
    """Everything `envelope schema --out DIR` writes, by file name."""

    asyncapi: dict[str, Any]
    json_schema: dict[str, Any]
    typescript: str

    def files(self) -> dict[str, str]:
        static = resources.files("actors") / "static" / "envelope"
        return {
            "asyncapi.json": dumps(self.asyncapi),
            "schemas.json": dumps(self.json_schema),
            "contract.ts": self.typescript,
            "client.js": (static / "client.js").read_text(),
            "client.d.ts": (static / "client.d.ts").read_text(),
        }


def artefacts(contract: Contract, server: str | None = None) -> Artefacts:
    document = asyncapi_document(contract, server=server)
    return Artefacts(
        asyncapi=document,
        json_schema=standalone(ModelSchemas(contract.models()), contract.title),
        typescript=typescript_module(document),
    )


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
