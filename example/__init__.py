"""The example project: a small Django site whose consumer serves the demo's messages.

`make demo` (or `envelope demo`) runs it; the docs and the end-to-end tests use it too.
"""
