"""Registration you cannot forget: installed apps' handlers.py found at start-up, the
served types logged, a system check when a consumer serves nothing of the application,
`unknown_type` pointing at registration, and the Origin check's deploy warnings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.processes import ROOT, python_env

pytestmark = pytest.mark.slow  # each test starts Django in a subprocess


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=python_env(DJANGO_SETTINGS_MODULE="tests.actors.discovery_settings", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_installed_apps_handlers_module_is_served_without_being_imported() -> None:
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "envelope.W003" not in result.stderr
    # The served types are logged once per consumer, when it is built.
    assert '"types":["disc.hello"]' in result.stdout + result.stderr


def test_without_discovery_check_warns_that_the_consumer_serves_nothing() -> None:
    result = manage("check", TEST_DISCOVERY_AUTODISCOVER="0")
    assert result.returncode == 0, result.stderr
    assert "envelope.W003" in result.stderr
    assert "ENVELOPE_AUTODISCOVER is off" in result.stderr


def test_check_deploy_warns_when_the_origin_check_is_off() -> None:
    on = manage("check", "--deploy")
    off = manage("check", "--deploy", TEST_DISCOVERY_CHECK_ORIGIN="0")
    assert "envelope.W004" not in on.stderr and "envelope.W005" not in on.stderr
    assert "envelope.W004" in off.stderr
    assert "cross-site websocket hijacking" in off.stderr


def test_check_deploy_warns_when_every_origin_is_allowed() -> None:
    result = manage("check", "--deploy", TEST_DISCOVERY_ALLOWED_HOSTS="*")
    assert "envelope.W005" in result.stderr
