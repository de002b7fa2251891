"""Prometheus metrics, in a registry owned by one app instance.

No global default registry: two servers in one test process (or a reload)
never share counters, and what ``/metrics`` shows is exactly this
instance's. Other parts register their own metrics through
:meth:`Metrics.counter` / :meth:`Metrics.gauge` / :meth:`Metrics.histogram`
(the webhook deliveries do), or add a collector with :meth:`Metrics.collect`
(values read at scrape time: AMI link and store state, callback queue depth).

The FastAGI server reports each call through :meth:`Metrics.call_done`
(``AgiServer.on_call``): one dict lookup and two increments, the labelled
children cached, so the hot path stays as fast as before (see
BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Decisions take ~1 ms without I/O, tens of ms with Redis or AMI lookups.
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Scraped(Collector):
    def __init__(self, produce: Callable[[], Iterable]) -> None:
        self.produce = produce

    def collect(self):
        yield from self.produce()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = self.counter("agi_calls", "FastAGI calls by module and outcome", ["module", "outcome"])
        self.decision_seconds = self.histogram(
            "agi_decision_seconds", "Time from the AGI header to the decision sent", ["module"],
            buckets=DECISION_BUCKETS,
        )  # fmt: skip
        self.callback_outcomes = self.counter(
            "agi_callback_attempts", "Callback attempts by the customer leg's result (AMI DialStatus)", ["result"]
        )
        self.reconnect_lookups = self.counter(
            "agi_reconnect_lookups", "Reconnect lookups by module and result (hit, miss)", ["module", "result"]
        )
        self.callback_queue = self.gauge(
            "agi_callback_queue", "Open callback requests due or in progress, by module", ["module"]
        )
        self.http_requests = self.counter("agi_http_requests", "HTTP API requests by status class", ["status"])
        self._children: dict[tuple[str, str, str], tuple] = {}

    # --- registration for other parts ------------------------------------

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, list(labels), registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, documentation, list(labels), registry=self.registry)

    def histogram(self, name: str, documentation: str, labels: Sequence[str] = (), *,
                  buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS) -> Histogram:  # fmt: skip
        return Histogram(name, documentation, list(labels), registry=self.registry, buckets=buckets)

    def collect(self, produce: Callable[[], Iterable]) -> None:
        """Add metric families computed at scrape time by ``produce()``."""
        self.registry.register(_Scraped(produce))

    # --- the FastAGI hot path ---------------------------------------------

    def call_done(self, route: str, outcome: str, seconds: float, kind: str = "") -> None:
        """One finished call (``AgiServer.on_call``): ``route`` is its AGI
        path (``calldist/700``), ``outcome`` decided / failed / hangup /
        closed / shutdown, ``kind`` the decided destination's kind.

        A reconnect decision to an extension is a hit (the remembered
        operator); any other decision of a reconnect route is a miss."""
        key = (route, outcome, kind)
        children = self._children.get(key)
        if children is None:
            module, _, rest = route.partition("/")
            if len(self._children) > 10_000:  # bound the cache whatever happens
                self._children.clear()
            lookup = None
            if module == "reconnect" and outcome == "decided" and "/" not in rest:
                lookup = self.reconnect_lookups.labels(rest, "hit" if kind == "extension" else "miss")
            children = self._children[key] = (
                self.calls.labels(module, outcome),
                self.decision_seconds.labels(module) if outcome == "decided" else None,
                lookup,
            )
        children[0].inc()
        if children[1] is not None:
            children[1].observe(seconds)
        if children[2] is not None:
            children[2].inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def ami_link_collector(ami) -> Callable[[], Iterable]:
    """``agi_ami_up``: 1 while logged in to AMI (absent without AMI)."""

    def produce():
        family = GaugeMetricFamily("agi_ami_up", "1 while logged in to AMI, else 0")
        family.add_metric([], 1.0 if ami.connected else 0.0)
        yield family

    return produce


def store_collector(store) -> Callable[[], Iterable]:
    """``agi_redis_up``: 0 while the store is marked down (calls take their
    failure paths without trying Redis), else 1. Read from the store's own
    state, not a PING: a Redis that failed while no call used it shows up
    at the next call or ``/healthz``."""

    def produce():
        family = GaugeMetricFamily("agi_redis_up", "0 while the store is marked down, else 1")
        family.add_metric([], 0.0 if store.is_down else 1.0)
        yield family

    return produce
