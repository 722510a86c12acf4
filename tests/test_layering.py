"""Dependencies flow one way: actors -> handlers -> envelope.

The import contracts in pyproject.toml (`lint-imports`, run by `make test`) check the
layers of the packages and of the rooms inside `actors/` on the source; these tests check
what they cannot see: imports made at run time, through third parties, and which single
module may import a library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = {
    "django",
    "channels",
    "daphne",
    "anyio",
    "rq",
    "django_rq",
    "redis",
    "structlog",
    "asgiref",
    "channels_redis",
    "async_signals",
}
FORBIDDEN = {
    "envelope": RUNTIME | {"handlers", "actors"},
    "handlers": RUNTIME | {"actors"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_load_without_the_runtime(package: str) -> None:
    # Importing for real also catches imports made indirectly, through third parties.
    code = (
        f"import sys, {package}; "
        f"bad = sorted(m for m in {sorted(FORBIDDEN[package])!r} if m in sys.modules); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{package} pulled in: {result.stdout.strip()} {result.stderr}"


def full_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_only_one_module_imports_channels_consumer_classes() -> None:
    users = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "actors").rglob("*.py"))
        if any(
            name.startswith(("channels.consumer", "channels.generic"))
            for name in full_imports(path)
        )
    ]
    assert users == ["actors/_consumer.py"]


def test_only_the_rq_modules_import_rq() -> None:
    users = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "actors").rglob("*.py"))
        if any(name.split(".")[0] in ("rq", "django_rq") for name in full_imports(path))
    ]
    assert users == [
        "actors/deferred/_rq.py",
        "actors/deferred/_rq_enqueue.py",
        "actors/deferred/_rq_job.py",
        "actors/deferred/_rq_outbox.py",
        "actors/deferred/_rq_reclaim.py",
        "actors/deferred/_rq_simple.py",
        "actors/deferred/_rq_simple_trips.py",
        "actors/deferred/_rq_template.py",
    ]
