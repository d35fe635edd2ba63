"""The service's Prometheus metrics, through `prometheus_client`.

Input: the runtime's statistics and the service's own counters, read at each scrape. Output: a
`CollectorRegistry` whose text (`prometheus_client.generate_latest`) is `GET /metrics`. Values are
read when scraped rather than mirrored into counters, so the store stays the one place they live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Runtime statistics as Prometheus series: name, type, help. Others are exported as gauges.
SERIES = {
    "events_in": ("sopdsl_events_in_total", "counter", "Events accepted by the runtime."),
    "actions_out": ("sopdsl_actions_out_total", "counter", "Actions handed to executors."),
    "timers_pending": ("sopdsl_timers_pending", "gauge", "Timers waiting to come due."),
    "failures": (
        "sopdsl_failures_total",
        "counter",
        "Executor calls that failed, and webhook attempts that failed before a retry.",
    ),
    "parked": ("sopdsl_actions_parked", "gauge", "Actions given up on after their retries."),
    "pending": ("sopdsl_actions_pending", "gauge", "Actions waiting for an executor, or for a retry."),
    "actions_failed": (
        "sopdsl_actions_failed_total",
        "counter",
        "Actions that failed as they were decided (a template or a member's data was at fault); never executed.",
    ),
    "ids_over_limit": (
        "sopdsl_ids_over_limit",
        "gauge",
        "Member and group ids over 256 characters (journaled before ids were limited) in the shards this worker holds.",
    ),
}


@dataclass
class ServiceCounters:
    """What the service counts itself (the runtime counts the rest, in its store)."""

    rejected: int = 0  # events refused as malformed, and bodies that were not events
    tick_errors: int = 0
    duplicates: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # HTTP status -> requests refused with it

    def refuse(self, status: int) -> None:
        """Count a request refused with `status`."""
        self.refused[status] = self.refused.get(status, 0) + 1


class _Collector(Collector):
    def __init__(self, stats: Callable[[], Mapping[str, float]], counters: ServiceCounters) -> None:
        self.stats = stats
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        for key, value in self.stats().items():
            name, kind, help_text = SERIES.get(key, (f"sopdsl_{key}", "gauge", f"Runtime statistic {key}."))
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(name, help_text, value=value)
        c = self.counters
        yield CounterMetricFamily(
            "sopdsl_events_rejected_total", "Events refused as malformed (HTTP and stdin).", value=c.rejected
        )
        yield CounterMetricFamily(
            "sopdsl_events_duplicate_total",
            "Events not stored again: their id was taken before.",
            value=c.duplicates,
        )
        yield CounterMetricFamily(
            "sopdsl_tick_errors_total", "Timer loop runs that failed.", value=c.tick_errors
        )
        refused = CounterMetricFamily(
            "sopdsl_requests_refused_total",
            "HTTP requests refused (400 malformed, 401, 403, 408, 413, 415, ...), by status.",
            labels=["status"],
        )
        for status, count in sorted(c.refused.items()):
            refused.add_metric([str(status)], count)
        yield refused


def registry(stats: Callable[[], Mapping[str, float]], counters: ServiceCounters) -> CollectorRegistry:
    """A registry of the service's metrics: `stats` is called at each scrape."""
    found = CollectorRegistry(auto_describe=False)
    found.register(_Collector(stats, counters))
    return found


def exposition(registry: CollectorRegistry) -> str:
    """The Prometheus text of a registry."""
    return generate_latest(registry).decode("utf-8")
