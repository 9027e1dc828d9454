"""Prometheus metrics shared by every process: counted in each, summed in Redis, served by any.

A Procfile app runs several web and worker processes, often on separate machines, and a
scrape reaches one of them; per-process counters would each tell a part. So each process
buffers its increments and adds them to one Redis hash once a second (a metric may lag
by that second, and a killed process loses at most its last second). `GET /metrics`
renders that hash, plus gauges read from Redis at scrape time (queue depths, workers).
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import Counter

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

METRICS = "pr:metrics"  # hash: "name|label=value,..." -> number
FLUSH_EVERY = 1.0
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
_BOUNDS = [str(b) for b in SECONDS_BUCKETS]
HELP = {
    "podrelay_http_requests_total": "HTTP answers by route, method and status",
    "podrelay_http_request_duration_seconds": "Time to answer an HTTP request, by route",
    "podrelay_job_transitions_total": "Job state changes by surface and new status",
    "podrelay_job_duration_seconds": "Time from accepting a job to its end, by surface",
    "podrelay_webhook_deliveries_total": "Delivery attempts by outcome (delivered, retry, dead, refused)",
    "podrelay_runpod_calls_total": "RunPod API calls by operation and HTTP status (or error)",
}


_FIELDS: dict[tuple, str] = {}  # (name, labels as given) -> hash field, built once per series
_HISTOGRAMS: dict[tuple, tuple] = {}  # (name, labels as given) -> its sum, count and bucket fields
_ANSWERED: dict[tuple, tuple] = {}  # (route, method, status) -> the fields `answered` adds to
_DURATION = "podrelay_http_request_duration_seconds"


def _field(name: str, labels: dict) -> str:
    cache_key = (name, *labels.items())
    field = _FIELDS.get(cache_key)
    if field is None:
        field = name + "|" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if len(_FIELDS) < 10_000:  # label values are podrelay's own (routes, statuses), but stay bounded
            _FIELDS[cache_key] = field
    return field


def _histogram(name: str, labels: dict) -> tuple[str, str, list[str]]:
    """A histogram series' sum and count fields, and its bucket fields by `bisect` index (the last: +Inf)."""
    cache_key = (name, *labels.items())
    fields = _HISTOGRAMS.get(cache_key)
    if fields is None:
        buckets = [_field(name + "_bucket", {**labels, "le": bound}) for bound in [*_BOUNDS, "+Inf"]]
        fields = (_field(name + "_sum", labels), _field(name + "_count", labels), buckets)
        if len(_HISTOGRAMS) < 1_000:
            _HISTOGRAMS[cache_key] = fields
    return fields


def _add_observation(pending: Counter, histogram: tuple[str, str, list[str]], value: float) -> None:
    """One value in the one bucket it falls in (made cumulative when rendered), the sum and the count."""
    sum_field, count_field, buckets = histogram
    pending[buckets[bisect.bisect_left(SECONDS_BUCKETS, value)]] += 1
    pending[sum_field] += value
    pending[count_field] += 1


class Metrics:
    """This process's increments, flushed to Redis every second by a background thread."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn
        self._pending: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False

    def inc(self, name: str, amount: float = 1, **labels) -> None:
        """Add to a counter."""
        with self._lock:
            self._pending[_field(name, labels)] += amount
        self._ensure_flusher()

    def observe(self, name: str, value: float, **labels) -> None:
        """Record one value in a histogram (its bucket, sum, count)."""
        histogram = _histogram(name, labels)
        with self._lock:
            _add_observation(self._pending, histogram, value)
        self._ensure_flusher()

    def answered(self, route: str, method: str, status: int, seconds: float | None) -> None:
        """One HTTP answer: `podrelay_http_requests_total` and, when timed, its duration (as
        `inc` and `observe` would count them, in one step: every request passes here)."""
        fields = _ANSWERED.get((route, method, status))
        if fields is None:
            total = _field("podrelay_http_requests_total", {"route": route, "method": method, "status": str(status)})
            fields = (total, _histogram(_DURATION, {"route": route}))
            if len(_ANSWERED) < 10_000:
                _ANSWERED[(route, method, status)] = fields
        total, histogram = fields
        with self._lock:
            self._pending[total] += 1
            if seconds is not None:
                _add_observation(self._pending, histogram, seconds)
        self._ensure_flusher()

    def flush(self) -> None:
        """Add what was counted since the last flush to Redis."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        try:
            pipe = self.conn.pipeline(transaction=False)
            for field, amount in pending.items():
                pipe.hincrbyfloat(METRICS, field, amount)
            pipe.execute()
        except redis.RedisError as error:  # keep the counts for the next round
            if not self._failing:  # once per outage, not once a second
                log.warning("metrics not flushed (kept for later): %s", error)
            self._failing = True
            with self._lock:
                self._pending.update(pending)
            return
        if self._failing:
            log.info("metrics flushed again")
        self._failing = False

    def _ensure_flusher(self) -> None:
        if self._thread is not None:  # on every request: no liveness check here, the loop cannot end
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            try:
                self.flush()
            except Exception:  # a fault in one flush must not stop counting for the process's life
                log.exception("metrics flush failed")


class RedisCollector:
    """Renders the shared counters, histograms and the live gauges for prometheus_client."""

    def __init__(self, conn: redis.Redis, gauges):
        self.conn = conn
        self.gauges = gauges  # () -> {name: (help, value)}

    def collect(self):
        """Every shared series, then the live gauges (prometheus_client calls this at scrape time)."""
        grouped: dict[str, list[tuple[dict, float]]] = {}
        for field, value in self.conn.hgetall(METRICS).items():
            name, _, label_text = field.decode().partition("|")
            labels = dict(pair.split("=", 1) for pair in label_text.split(",") if pair)
            grouped.setdefault(name, []).append((labels, float(value)))
        for name in sorted({n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in grouped}):
            if name + "_bucket" in grouped:
                yield self._histogram(name, grouped)
            else:
                yield self._counter(name, grouped[name])
        for name, (text, value) in self.gauges().items():
            yield GaugeMetricFamily(name, text, value=value)

    @staticmethod
    def _counter(name: str, samples: list) -> CounterMetricFamily:
        keys = sorted({k for labels, _ in samples for k in labels})
        family = CounterMetricFamily(name.removesuffix("_total"), HELP.get(name, name), labels=keys)
        for labels, value in samples:
            family.add_metric([labels.get(k, "") for k in keys], value)
        return family

    @staticmethod
    def _histogram(name: str, grouped: dict) -> HistogramMetricFamily:
        by_series: dict[tuple, dict] = {}
        for labels, value in grouped[name + "_bucket"]:
            series = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            by_series.setdefault(series, {})[labels["le"]] = value
        sums = {tuple(sorted(labels.items())): value for labels, value in grouped.get(name + "_sum", [])}
        keys = sorted({k for series in by_series for k, _ in series})
        family = HistogramMetricFamily(name, HELP.get(name, name), labels=keys)
        for series, counts in by_series.items():
            ordered, running = [], 0.0
            for bound in [*map(str, SECONDS_BUCKETS), "+Inf"]:
                running += counts.get(bound, 0.0)
                ordered.append((bound, running))
            family.add_metric([dict(series).get(k, "") for k in keys], ordered, sum_value=sums.get(series, 0.0))
        return family


def registry(conn: redis.Redis, gauges) -> CollectorRegistry:
    """A registry holding only podrelay's shared metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RedisCollector(conn, gauges))
    return reg
