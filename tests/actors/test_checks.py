from __future__ import annotations

import re
from pathlib import Path

from django.core import checks
from django.test import override_settings

from actors.checks import KNOWN, check_settings


def ids(problems: list[checks.CheckMessage]) -> list[str]:
    return [p.id for p in problems if p.id is not None]


def test_the_test_settings_pass() -> None:
    assert check_settings() == []


def test_a_misspelt_setting_is_a_warning_naming_the_right_one() -> None:
    with override_settings(ENVELOPE_MAILBOX_SIZES=3):
        (problem,) = check_settings()
    assert problem.id == "envelope.W001"
    assert "ENVELOPE_MAILBOX_SIZE" in str(problem.hint)


def test_a_bad_value_is_an_error() -> None:
    with override_settings(ENVELOPE_MAILBOX_SIZE=0):
        assert ids(check_settings()) == ["envelope.E001"]


def test_a_pipeline_that_does_not_import_is_an_error() -> None:
    with override_settings(ENVELOPE_PIPELINE=["actors.stages.respond", "no.such.stage"]):
        assert ids(check_settings()) == ["envelope.E002"]


def test_no_channel_layer_is_a_warning() -> None:
    with override_settings(CHANNEL_LAYERS={}):
        assert ids(check_settings()) == ["envelope.W002"]


def test_the_checks_are_registered_with_django() -> None:
    with override_settings(ENVELOPE_MAILBOX_SIZE=0):
        assert "envelope.E001" in ids(checks.run_checks(tags=["envelope"]))


def test_a_frame_limit_above_what_daphne_accepts_is_an_error() -> None:
    with override_settings(ENVELOPE_MAX_FRAME_BYTES=2 * 1024 * 1024):
        (problem,) = check_settings()
    assert problem.id == "envelope.E004"
    assert "1048576" in problem.msg and "SILENCED_SYSTEM_CHECKS" in str(problem.hint)
    with override_settings(ENVELOPE_MAX_FRAME_BYTES=1024 * 1024):
        assert check_settings() == []


def test_every_setting_the_code_reads_is_known_and_documented() -> None:
    # A setting read somewhere but missing from KNOWN would warn "not an Envelope Router
    # setting" at every start-up; one missing from docs/settings.md is undocumented.
    root = Path(__file__).resolve().parents[2]
    read = set()
    for package in ("actors", "envelope", "handlers"):
        for path in (root / package).rglob("*.py"):
            read |= set(re.findall(r"\bENVELOPE_[A-Z][A-Z_]*[A-Z]\b", path.read_text()))
    documented = set(
        re.findall(r"\bENVELOPE_[A-Z][A-Z_]*[A-Z]\b", (root / "docs/settings.md").read_text())
    )
    assert read - KNOWN == set()
    assert KNOWN - documented == set()
