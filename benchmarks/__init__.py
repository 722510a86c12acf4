"""Routing benchmarks: Envelope Router against plain Channels, side by side in one run.

Run them with `envelope bench` (or `python -m benchmarks`); one scenario alone with
e.g. `python -m benchmarks.pipeline`. Results: a table on stdout, JSON in
`benchmarks/results/latest.json`, and `BENCHMARKS.md` (see `--write-md`).
"""
