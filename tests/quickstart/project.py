"""Build the README's quick-start project in a directory and serve it, as a reader would.

The commands run in a shell in the project's directory with the suite's interpreter first
on `PATH` (that interpreter has the package installed, which is what the README's
installation step does), without the suite's `DJANGO_SETTINGS_MODULE` or `PYTHONPATH`: the
project finds its settings the way the README sets them up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port, stop, wait_for_port
from tests.quickstart.readme import Block, quickstart_blocks


def reader_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def shell(command: str, cwd: Path, timeout: float = 120, **env: str) -> str:
    """Run one command line of the README; its output, or an error quoting it."""
    proc = subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=reader_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"the README's `{command}` failed with {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


@dataclass
class QuickstartSite:
    root: Path
    blocks: list[Block]
    url: str  # http://127.0.0.1:<port>
    log: Path

    @property
    def ws(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws/"


def build(root: Path, blocks: list[Block]) -> None:
    """Every command and file of the README, in its order (the serve and client commands
    are run by the test)."""
    for block in blocks:
        if block.kind == "run":
            for command in block.commands():
                shell(command, root)
        elif block.kind in ("file", "append"):
            assert block.target, f"a {block.kind} block without its file"
            path = root / block.target
            if block.kind == "append":
                assert path.exists(), f"the README appends to {block.target}, never created"
                with path.open("a") as f:
                    f.write("\n" + block.body)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.body)


@contextlib.contextmanager
def quickstart_site(root: Path) -> Iterator[QuickstartSite]:
    """The project built from the README, served by the README's command (Django's
    `runserver`, which is daphne's once "daphne" is in INSTALLED_APPS) on a free port."""
    blocks = quickstart_blocks()
    build(root, blocks)
    (serve,) = [b.commands() for b in blocks if b.kind == "serve"]
    (command,) = serve
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as sink:
        # Its own session: the autoreloader runs the server as a child process.
        proc = subprocess.Popen(
            f"exec {command} 127.0.0.1:{port}",
            shell=True,
            cwd=root,
            env=reader_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_for_port(port, timeout=60, process=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}; the server said:\n{log.read_text()[-3000:]}") from exc
        yield QuickstartSite(root, blocks, f"http://127.0.0.1:{port}", log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        stop(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the reloader's child, if it lingers
