"""The contract with clients, generated from the routers a consumer serves and the
declared topics: an AsyncAPI 3.0 document, JSON Schema of every model, TypeScript
declarations with a typed client, and the check that a new contract breaks no client
of an old one (`envelope schema`, see `actors.contract.cli`).

    contract = build_contract(config.routes, config.settings, path="/ws/")
    document = asyncapi_document(contract)          # JSON-able dict
    source = typescript_module(document)            # contract.ts
    changes = compare(old_document, document)       # [Change(kind, where, detail, breaking)]
"""

from actors.contract._asyncapi import asyncapi_document
from actors.contract._build import (
    Artefacts,
    ContractOptions,
    artefacts,
    find_consumer,
    project_contract,
)
from actors.contract._check import Change, compare
from actors.contract._discover import ServedConsumer, served_consumers
from actors.contract._markdown import contract_markdown
from actors.contract._model import CLOSE_CODES, Contract, Push, Request, build_contract, error_codes
from actors.contract._schemas import ModelSchemas
from actors.contract._typescript import topic_name_type, typescript_module
from actors.contract.cli import main

__all__ = [
    "CLOSE_CODES",
    "Artefacts",
    "Change",
    "Contract",
    "ContractOptions",
    "ModelSchemas",
    "Push",
    "Request",
    "ServedConsumer",
    "artefacts",
    "asyncapi_document",
    "build_contract",
    "compare",
    "contract_markdown",
    "error_codes",
    "find_consumer",
    "main",
    "project_contract",
    "served_consumers",
    "topic_name_type",
    "typescript_module",
]
