"""Dependencies flow one way: actors -> handlers -> envelope. Checked on the source."""

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


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_import_nothing_above_them(package: str) -> None:
    offending = {
        path: sorted(names & FORBIDDEN[package])
        for path, names in imported_modules(package).items()
        if names & FORBIDDEN[package]
    }
    assert offending == {}


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
        path for path, names in imported_modules("actors").items() if names & {"rq", "django_rq"}
    ]
    assert sorted(users) == ["actors/_rq.py", "actors/_rq_simple.py"], users
