"""The README's quick start, read from its own code blocks.

Each block of the quick start is preceded by a marker comment saying what it is:

    <!-- quickstart:install -->                  installation (not run: the suite's
                                                 interpreter already has the package)
    <!-- quickstart:run -->                      shell commands, run line by line
    <!-- quickstart:file chat/handlers.py -->    a whole file
    <!-- quickstart:append mysite/settings.py --> lines appended to a generated file
    <!-- quickstart:serve -->                    the command that serves the project
    <!-- quickstart:listen --> / speak           the two client commands
    <!-- quickstart:exchange -->                 what the speaking client prints

Nothing else goes into the project: what the README says is all there is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

_BLOCK = re.compile(
    r"<!-- quickstart:(?P<kind>[a-z]+)(?: (?P<target>\S+))? -->\n"
    r"```[a-z]*\n(?P<body>.*?)```\n",
    re.S,
)
KINDS = {"install", "run", "file", "append", "serve", "listen", "speak", "exchange"}


@dataclass(frozen=True)
class Block:
    kind: str
    target: str | None  # the file of `file` and `append` blocks
    body: str

    def commands(self) -> list[str]:
        return [line for line in self.body.splitlines() if line.strip()]


def quickstart_blocks(text: str | None = None) -> list[Block]:
    """The marked blocks, in the README's order."""
    text = README.read_text() if text is None else text
    blocks = [Block(m["kind"], m["target"], m["body"]) for m in _BLOCK.finditer(text)]
    unknown = {b.kind for b in blocks} - KINDS
    if unknown:
        raise ValueError(f"unknown quickstart markers in the README: {sorted(unknown)}")
    # A marker whose block did not parse would silently drop a step.
    if text.count("<!-- quickstart:") != len(blocks):
        raise ValueError("a quickstart marker is not followed by a fenced code block")
    return blocks


def one(blocks: list[Block], kind: str) -> Block:
    (block,) = [b for b in blocks if b.kind == kind]
    return block
