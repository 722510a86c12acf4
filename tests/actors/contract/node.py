"""Node tools for the contract tests: the AsyncAPI parser, `tsc --strict`, `ws`.

They are installed by `make install` into js/node_modules (`npm ci`). Without `node`
the tests that need them are skipped, saying so; with `node` but without the packages
they fail, saying how to install them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.processes import ROOT

NODE = shutil.which("node")
JS = ROOT / "js"
NODE_MODULES = JS / "node_modules"

needs_node = pytest.mark.skipif(
    NODE is None, reason="`node` is not installed: the AsyncAPI parser, tsc and ws need it"
)


def _tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install` (npm ci in js/)")
    return str(path)


def run_node(
    *args: str, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def validate_asyncapi(*paths: Path) -> dict[str, dict[str, Any]]:
    """The official parser's verdict on each document (one Node process for all):
    path -> {"valid": bool, "version": ..., "diagnostics": [{level, code, at, message}]}."""
    _tool(NODE_MODULES / "@asyncapi" / "parser")
    result = run_node(str(JS / "validate-asyncapi.mjs"), *map(str, paths))
    verdicts = {}
    for line in result.stdout.splitlines():
        verdict = json.loads(line)
        verdicts[verdict.pop("path")] = verdict
    assert len(verdicts) == len(paths), result.stdout + result.stderr
    return verdicts


def errors_of(verdict: dict[str, Any]) -> list[str]:
    return [
        f"{d['code']} at {d['at']}: {d['message']}"
        for d in verdict["diagnostics"]
        if d["level"] == "Error"
    ]


TSCONFIG: dict[str, Any] = {
    "compilerOptions": {
        "strict": True,
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "types": ["node"],
        "lib": ["ES2022"],
        "outDir": "build",
        "noUnusedLocals": True,
    },
}


def tsc(folder: Path, files: list[str], *, emit: bool = False) -> subprocess.CompletedProcess[str]:
    """`tsc --strict` over `files` of `folder` (which gets a tsconfig.json and a link to
    js/node_modules, so that `ws` and its types resolve)."""
    compiler = _tool(NODE_MODULES / "typescript" / "bin" / "tsc")
    config = {**TSCONFIG, "files": files}
    config["compilerOptions"] = {**TSCONFIG["compilerOptions"], "noEmit": not emit}
    (folder / "tsconfig.json").write_text(json.dumps(config))
    (folder / "package.json").write_text('{"type": "module"}')
    link = folder / "node_modules"
    if not link.exists():
        os.symlink(NODE_MODULES, link)
    return run_node(compiler, "-p", str(folder), cwd=folder)
