"""A project module named like one of the library's packages is an error naming the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import python_env


def import_in(project: Path, statement: str) -> subprocess.CompletedProcess[str]:
    """Run `statement` from `project` (first on sys.path, as manage.py's directory is)."""
    return subprocess.run(
        [sys.executable, "-c", statement],
        cwd=project,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("path", "source", "statement"),
    [
        pytest.param(
            "handlers.py", "from handlers import handler\n", "import actors", id="handlers.py"
        ),
        pytest.param(
            "handlers/__init__.py",
            "from handlers import handler\n",
            "import actors",
            id="handlers package",
        ),
        pytest.param(
            "envelope.py", "from envelope import message\n", "import actors", id="envelope.py"
        ),
        pytest.param("envelope.py", "X = 1\n", "import actors", id="envelope.py, no import"),
        pytest.param(
            "actors.py",
            "from handlers import handler\n",
            "import actors",
            id="actors.py",
        ),
    ],
)
def test_a_module_shadowing_a_library_package_is_an_error_naming_its_file(
    tmp_path: Path, path: str, source: str, statement: str
) -> None:
    shadow = tmp_path / path
    shadow.parent.mkdir(parents=True, exist_ok=True)
    shadow.write_text(source)
    name = path.split("/")[0].removesuffix(".py")
    result = import_in(tmp_path, statement)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert f"{shadow} is imported as {name!r}, the name of an Envelope Router package" in last
    assert "Rename it" in last


def test_the_library_imports_cleanly_beside_an_app_with_its_own_handlers_module(
    tmp_path: Path,
) -> None:
    app = tmp_path / "chat"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "handlers.py").write_text("from handlers import handler\n")
    result = import_in(tmp_path, "import actors, chat.handlers")
    assert result.returncode == 0, result.stderr
