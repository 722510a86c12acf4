"""The deferred scenario counts the server's CPU from when it is idle again after the
burst's handshakes (`until_idle`), so that the figure is what the jobs cost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from benchmarks._rq_load import until_idle

# Burns a fixed amount of work (not time), then writes a mark and sleeps.
_BUSY_THEN_IDLE = """
import sys, time
total = 0
for n in range(30_000_000):
    total += n
open(sys.argv[1], "w").write(str(total))
time.sleep(60)
"""


def test_waits_until_the_process_has_done_its_work(tmp_path: Path) -> None:
    mark = tmp_path / "done"
    proc = subprocess.Popen([sys.executable, "-c", _BUSY_THEN_IDLE, str(mark)])
    try:
        # A quiet second: a process descheduled on a loaded machine is not taken as idle.
        asyncio.run(until_idle(proc.pid, quiet=1.0, deadline=120))
        assert mark.exists()
        assert mark.read_text() == str(sum(range(30_000_000)))
    finally:
        proc.kill()
        proc.wait()
