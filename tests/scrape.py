"""Scraping a real server's Prometheus metrics and reading them with prometheus-client's
own parser (tests of `actors.metrics`)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

#: Every sample of a scrape, by its name and labels.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int, accept: str | None = None, path: str = "/metrics") -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def parsed(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels; 0 when the scrape has none."""
    return found.get((name, frozenset(labels.items())), 0.0)


def label_values(found: Samples, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for (sample, labels) in found if sample == name}
