"""What a visitor sees first on the console: a screenshot of the page as it opens."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from tests.example.server import ExampleServer

pytestmark = pytest.mark.slow

# Installed before the page's scripts run: how many types the list held at the moment the
# status badge first said "open".
RECORD_TYPES_AT_OPEN = """
window.typesWhenOpen = null;
document.addEventListener("DOMContentLoaded", () => {
  const badge = document.getElementById("status");
  const record = () => {
    if (badge.dataset.status === "open" && window.typesWhenOpen === null) {
      window.typesWhenOpen = document.getElementById("type").options.length;
    }
  };
  new MutationObserver(record).observe(badge, { attributes: true });
  record();
});
"""


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_first_screen_says_what_to_try_and_the_types_are_ready_when_open(
    page: Any, server: ExampleServer, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.add_init_script(RECORD_TYPES_AT_OPEN)
    page.goto(f"{server.http}/")
    page.wait_for_selector("#status[data-status='open']")

    # The types a client may send: the contract's `receive` operations.
    served = page.evaluate(
        "fetch('/api/schema').then(r => r.json())"
        ".then(doc => Object.values(doc.operations).filter(op => op.action === 'receive'))"
    )
    assert page.evaluate("window.typesWhenOpen") == len(served) > 0
    assert page.input_value("#type") == "ping"

    hint = page.locator("#hint")
    text = " ".join(hint.inner_text().split())
    for what in ("ping", "log in", "report.build", "room.lobby", "chat.send"):
        assert what in text
    # One line on the first screen, above everything else.
    box = hint.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800
    line_height = page.evaluate(
        "parseFloat(getComputedStyle(document.getElementById('hint')).lineHeight)"
    )
    assert box["height"] < 2 * line_height + 2 * 16  # one line plus its padding
    assert box["y"] < page.locator("main").bounding_box()["y"]

    shot = tmp_path / "console.png"
    page.screenshot(path=str(shot))
    assert png_size(shot) == (1280, 800)
    hint_shot = tmp_path / "hint.png"
    hint.screenshot(path=str(hint_shot))
    assert png_size(hint_shot)[1] >= 16
