"""The wheel installs `envelope`, `handlers` and `actors` only; `envelope bench` and
`envelope demo` need a checkout of the repository and say so from an installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from actors.cli import checkout_root
from tests.processes import ROOT

SOURCES = ["pyproject.toml", "README.md", "LICENSE", "envelope", "handlers", "actors"]
# In the copy too, so that the wheel leaves them out by configuration, not by absence.
LEFT_OUT = ["benchmarks", "example"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A wheel built from a copy of the sources (an in-tree build would write `build/`
    into the checkout), and the build's output."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "results")
    for name in SOURCES + LEFT_OUT:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(out), "-v"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("envelope_router-*.whl")
    return built, result.stdout + result.stderr


@pytest.mark.slow
def test_the_wheel_installs_only_the_three_packages(wheel: tuple[Path, str]) -> None:
    with zipfile.ZipFile(wheel[0]) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        fields = archive.read(metadata).decode().splitlines()
    assert {name for name in top if not name.endswith(".dist-info")} == {
        "actors",
        "envelope",
        "handlers",
    }
    assert "License-Expression: MIT" in fields


@pytest.mark.slow
def test_the_build_gives_no_license_warning(wheel: tuple[Path, str]) -> None:
    lines = wheel[1].lower().splitlines()
    assert [
        line for line in lines if "deprecat" in line or ("warn" in line and "licen" in line)
    ] == []


@pytest.mark.slow
@pytest.mark.parametrize("command", ["bench", "demo"])
def test_an_installed_package_says_bench_and_demo_need_a_checkout(
    wheel: tuple[Path, str], tmp_path: Path, command: str
) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), wheel[0]],
        capture_output=True,
        timeout=120,
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import actors.cli; "
        f"assert actors.cli.__file__.startswith({str(site)!r}), actors.cli.__file__; "
        f"sys.exit(actors.cli.main([{command!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"`envelope {command}` needs a checkout of the Envelope Router repository" in (
        " ".join(result.stderr.split())
    )


def test_a_checkout_is_found_beside_the_package(tmp_path: Path) -> None:
    (tmp_path / "actors").mkdir()
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "benchmarks" / "run.py").write_text("")
    assert checkout_root("benchmarks/run.py", tmp_path / "actors") == tmp_path
    assert checkout_root("example/demo.py", tmp_path / "actors") is None


def test_this_checkout_is_found() -> None:
    assert checkout_root("benchmarks/run.py") == ROOT
    assert checkout_root("example/demo.py") == ROOT
