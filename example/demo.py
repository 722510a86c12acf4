"""`make demo` / `envelope demo`: set up the example project and run it until Ctrl-C.

    python -m example.demo [--host 127.0.0.1] [--port 8000] [--server daphne|uvicorn]
                           [--setup-only]

Migrates the sqlite database, creates the demo user (demo / demo), then runs daphne
(or uvicorn, `make demo SERVER=uvicorn`) on the example's ASGI app. Without `REDIS_URL`
that is all: the in-memory channel layer and deferred handlers in a thread of the
server. With `REDIS_URL` the channel layer is Redis and one RQ worker runs beside the
server. Ctrl-C (or SIGTERM) stops every child process; if a child dies, the others are
stopped too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "example.settings"
#: Seconds a child gets to exit after SIGTERM before it is killed.
STOP_GRACE = 20.0
#: The ASGI servers the example runs under; the first is the default.
SERVERS = ("daphne", "uvicorn")
#: uvicorn's --timeout-graceful-shutdown: past the drain (ENVELOPE_DRAIN_SECONDS, 5 s by
#: default) and the close handshake, it cancels what is left and exits.
UVICORN_GRACEFUL_SECONDS = 15


def setup_database() -> None:
    """Migrate and create (or reset the password of) the demo user, in this process."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username=settings.DEMO_USERNAME)
    user.set_password(settings.DEMO_PASSWORD)
    user.save()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    # A development server, so DEBUG is on (the console's waterfall is served only then);
    # EXAMPLE_DEBUG=0 turns it off.
    env.setdefault("EXAMPLE_DEBUG", "1")
    # The children import `example` however the demo was started (make, envelope, -m).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def server_argv(server: str, host: str, port: int, app: str) -> list[str]:
    """The command that serves `app` on host:port as the deployment guide says: daphne, or
    uvicorn with the websockets sans-I/O protocol and a bounded graceful shutdown."""
    python = sys.executable
    if server == "daphne":
        return [python, "-m", "daphne", "-b", host, "-p", str(port), app]
    if server == "uvicorn":
        return [
            *(python, "-m", "uvicorn", "--host", host, "--port", str(port)),
            *("--ws", "websockets-sansio"),
            *("--timeout-graceful-shutdown", str(UVICORN_GRACEFUL_SECONDS)),
            app,
        ]
    raise ValueError(f"unknown server {server!r}; choose from {', '.join(SERVERS)}")


def commands(
    host: str, port: int, redis_url: str, server: str = "daphne"
) -> list[tuple[str, list[str]]]:
    """The child processes to run: (name, argv)."""
    python = sys.executable
    out = [("server", server_argv(server, host, port, "example.asgi:application"))]
    if redis_url:
        worker = "actors.workers.EnvelopeWorker"
        out.append(
            ("worker", [python, "-m", "django", "rqworker", "default", "--worker-class", worker])
        )
    return out


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_listening(host: str, port: int, server: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


class Stop(Exception):
    """SIGTERM (or SIGINT) arrived: stop the children and leave."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def stop_all(children: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in children:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for name, proc in children:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"demo: {name} did not stop in {STOP_GRACE:g} s; killing it", flush=True)
            proc.kill()
            proc.wait()


def serve(host: str, port: int, server: str = "daphne") -> int:
    redis_url = os.environ.get("REDIS_URL", "")
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    previous_term = signal.signal(signal.SIGTERM, _raise_stop)
    # Explicitly: a shell without job control starts `make demo &` with SIGINT ignored.
    previous_int = signal.signal(signal.SIGINT, _raise_stop)
    try:
        env = child_env()
        for name, argv in commands(host, port, redis_url, server):
            children.append((name, subprocess.Popen(argv, cwd=ROOT, env=env)))
        if not wait_listening(host, port, children[0][1], timeout=30):
            print("demo: the server did not start listening; see its output above", flush=True)
            return 1
        deferred = f"RQ worker on {redis_url}" if redis_url else "a thread of the server"
        print(
            f"\nEnvelope Router demo: http://{host}:{port}/  (websocket ws://{host}:{port}/ws/)"
            f" on {server}\n"
            f"  log in as demo / demo; deferred handlers run in {deferred}.\n"
            "  Ctrl-C stops it.\n",
            flush=True,
        )
        while True:
            for name, proc in children:
                code = proc.poll()
                if code is not None:
                    print(f"demo: {name} exited with status {code}; stopping", flush=True)
                    # Killed by a signal (code < 0) or gone with 0: still a failure.
                    return code if code > 0 else 1
            time.sleep(0.2)
    except Stop:
        print("\ndemo: stopping", flush=True)
        return 0
    finally:
        # A second Ctrl-C (or SIGTERM) while stopping must not leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(children)
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="envelope demo", description="Run the Envelope Router example with its console."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=SERVERS[0],
        help="the ASGI server (daphne); uvicorn needs the extra: "
        "pip install 'envelope-router[uvicorn]'",
    )
    parser.add_argument(
        "--setup-only",
        action="store_true",
        help="migrate and create the demo user, then exit",
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: a port is 1-65535")
    if args.setup_only:
        setup_database()
        return 0
    if args.server == "uvicorn" and importlib.util.find_spec("uvicorn") is None:
        print(
            "demo: uvicorn is not installed; pip install 'envelope-router[uvicorn]' "
            "(make install does)",
            file=sys.stderr,
        )
        return 2
    if not port_is_free(args.host, args.port):
        print(
            f"demo: {args.host}:{args.port} is in use; pick another port "
            f"(make demo PORT={args.port + 1}, or --port)",
            file=sys.stderr,
        )
        return 2
    # Django is set up in a child, so that this process stays a plain supervisor
    # (and `envelope demo` works whatever settings its own process has).
    setup = subprocess.run(
        [sys.executable, "-m", "example.demo", "--setup-only"], cwd=ROOT, env=child_env()
    )
    if setup.returncode:
        print("demo: setting up the database failed; see above", file=sys.stderr)
        return setup.returncode
    return serve(args.host, args.port, args.server)


if __name__ == "__main__":
    sys.exit(main())
