"""`envelope schema`: the contract of a project's consumer, and the breaking-change check.

envelope schema --settings mysite.settings                  # AsyncAPI 3.0 JSON on stdout
envelope schema --format ts                                 # contract.ts on stdout
envelope schema --format markdown                           # a page for the docs
envelope schema --out contract/                             # every file, in a folder
envelope schema --check contract/asyncapi.json              # exit 1 on a breaking change
envelope schema --check old.json --against new.json         # two files, no Django needed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from actors.contract._build import (
    DEFAULT_TITLE,
    DEFAULT_VERSION,
    Artefacts,
    ContractOptions,
    artefacts,
    dumps,
    project_contract,
)
from actors.contract._check import compare
from actors.contract._markdown import contract_markdown

FORMATS = ("asyncapi", "jsonschema", "ts", "markdown")


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(
        prog="envelope schema",
        description=(
            "Write the contract of the EnvelopeConsumer a Django project serves (its "
            "routers and declared topics): an AsyncAPI 3.0 document, JSON Schema of every "
            "model, and a typed TypeScript client; or check it against an earlier document."
        ),
    )
    out.add_argument("--settings", help="Django settings module (default: DJANGO_SETTINGS_MODULE)")
    out.add_argument("--app", help="the ASGI app, module:attribute (default: ASGI_APPLICATION)")
    out.add_argument("--path", help="the websocket path of the consumer, when there are several")
    out.add_argument(
        "--title", help=f"info.title (default: ENVELOPE_SCHEMA_TITLE, else {DEFAULT_TITLE!r})"
    )
    out.add_argument(
        "--api-version",
        help=f"info.version (default: ENVELOPE_SCHEMA_VERSION, else {DEFAULT_VERSION!r})",
    )
    out.add_argument("--server", help="ws://host:port to list as the document's server")
    out.add_argument("--format", choices=FORMATS, default="asyncapi", help="what to print")
    out.add_argument("--out", type=Path, help="write every file into this folder instead")
    out.add_argument(
        "--check",
        type=Path,
        metavar="OLD.json",
        help="compare with an earlier AsyncAPI document; exit 1 if a change breaks its clients",
    )
    out.add_argument(
        "--against",
        type=Path,
        metavar="NEW.json",
        help="with --check: compare with this document instead of the project's",
    )
    return out


def _setup_django(settings: str | None) -> None:
    if settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise SystemExit(
            "envelope schema: give --settings mysite.settings or set DJANGO_SETTINGS_MODULE"
        )
    # Like `manage.py` and daphne: the project is importable from where the command runs.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        django.setup()
    except ImportError as exc:
        raise SystemExit(
            f"envelope schema: cannot load the settings {os.environ['DJANGO_SETTINGS_MODULE']!r}"
            f" ({exc}); run it from the project's directory or set PYTHONPATH"
        ) from None


def _read(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except OSError as exc:
        raise SystemExit(f"envelope schema: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SystemExit(f"envelope schema: {path} is not JSON ({exc})") from None
    return document


def _current(args: argparse.Namespace) -> Artefacts:
    _setup_django(args.settings)
    options = ContractOptions(
        app=args.app,
        path=args.path,
        title=args.title or getattr(settings, "ENVELOPE_SCHEMA_TITLE", DEFAULT_TITLE),
        version=args.api_version or getattr(settings, "ENVELOPE_SCHEMA_VERSION", DEFAULT_VERSION),
        server=args.server,
    )
    try:
        return artefacts(project_contract(options), server=args.server)
    except (ImproperlyConfigured, ImportError, AttributeError, ValueError) as exc:
        raise SystemExit(f"envelope schema: {exc}") from None


def run_check(args: argparse.Namespace) -> int:
    old = _read(args.check)
    new = _read(args.against) if args.against else _current(args).asyncapi
    try:
        changes = compare(old, new)
    except ValueError as exc:
        print(f"envelope schema: {exc}", file=sys.stderr)
        return 2
    breaking = [c for c in changes if c.breaking]
    for change in changes:
        print(change)
    if breaking:
        print(
            f"envelope schema: {len(breaking)} breaking change"
            f"{'s' if len(breaking) != 1 else ''} since {args.check}",
            file=sys.stderr,
        )
        return 1
    print(f"envelope schema: no breaking change since {args.check}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(argv) if argv is not None else None)
    if args.against and not args.check:
        print("envelope schema: --against goes with --check OLD.json", file=sys.stderr)
        return 2
    if args.check:
        return run_check(args)
    made = _current(args)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, text in made.files().items():
            (args.out / name).write_text(text)
        print(f"envelope schema: wrote {', '.join(made.files())} to {args.out}", file=sys.stderr)
        return 0
    if args.format == "ts":
        sys.stdout.write(made.typescript)
    elif args.format == "markdown":
        sys.stdout.write(contract_markdown(made.asyncapi))
    else:
        sys.stdout.write(dumps(made.asyncapi if args.format == "asyncapi" else made.json_schema))
    return 0
