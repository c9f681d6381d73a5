"""`metric_spikes`: a week of history in a real Prometheus, read back and judged.

The series have a strong daily rhythm (latency 50 % higher every afternoon) and noise,
so a detector that ignored the time of day would alarm every afternoon. The detector
compares weekdays and hours, so the history is anchored on a fixed weekday and hour
(a Wednesday, 14:00 UTC, at least a week ago): the same data, the same verdict, on
whatever day the tests run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from gateway.config import Config, parse_config
from gateway.metrics.aberrations import metric_spikes
from tests.support.net import free_port
from tests.support.prometheus import Prometheus, anchor_now, latency, openmetrics

STEP = timedelta(minutes=5)
WEDNESDAY = 2


def config_for(tmp_path: Any, *metrics: dict[str, str]) -> Config:
    return parse_config({"metrics": list(metrics)}, base_dir=tmp_path)


def test_a_spike_is_reported_at_its_start_and_only_in_its_series(
    tmp_path: Any, prometheus_factory: Callable[..., Prometheus]
) -> None:
    now = anchor_now()
    spike_at = now - timedelta(hours=3, minutes=20)
    history = latency("api_latency_ms", {"service": "checkout"}, now, seed=1, spike_at=spike_at)
    history += latency("api_latency_ms", {"service": "search"}, now, seed=2)
    server = prometheus_factory(history=openmetrics(history))
    config = config_for(tmp_path, {"name": "latency", "url": server.url, "query": "api_latency_ms"})

    (finding,) = metric_spikes(config, now=now)

    assert finding.error is None and finding.spike is not None
    assert finding.metric == "latency"
    assert finding.labels == {"__name__": "api_latency_ms", "service": "checkout"}
    assert finding.spike.scope == 'latency{service="checkout"}'
    assert finding.spike.start == spike_at
    # The half-hour trailing window keeps alarming until the spike has left it.
    assert spike_at + timedelta(minutes=30) <= finding.spike.end <= spike_at + timedelta(hours=1)
    assert finding.spike.observed > finding.spike.expected
    assert finding.describe().startswith('latency{service="checkout"}: ')
    # The whole week for a sparkline, from the UTC midnight before the lookback.
    times = [t for t, _ in finding.series]
    assert times[0] == (now - timedelta(days=7)).replace(hour=0)
    assert times[-1] == now
    assert len(times) == (now - times[0]) / STEP + 1


def test_recent_keeps_only_spikes_that_reach_the_last_hours(
    tmp_path: Any, prometheus_factory: Callable[..., Prometheus]
) -> None:
    now = anchor_now()
    history = latency("lat", {}, now, seed=1, spike_at=now - timedelta(days=2))
    server = prometheus_factory(history=openmetrics(history))
    config = config_for(tmp_path, {"name": "lat", "url": server.url, "query": "lat"})

    (old,) = metric_spikes(config, now=now)
    assert old.spike is not None and old.spike.start == now - timedelta(days=2)
    assert metric_spikes(config, now=now, recent=timedelta(hours=24)) == []


def test_a_quiet_seasonal_series_is_not_a_spike(
    tmp_path: Any, prometheus_factory: Callable[..., Prometheus]
) -> None:
    now = anchor_now()
    history = latency("api_latency_ms", {"service": "search"}, now, seed=2)
    history += latency("api_latency_ms", {"service": "cart"}, now, seed=5)
    server = prometheus_factory(history=openmetrics(history))
    config = config_for(tmp_path, {"name": "latency", "url": server.url, "query": "api_latency_ms"})

    assert metric_spikes(config, now=now) == []
    # The afternoons are 50 % above the nights: a detector blind to the hour would alarm.
    values = [v for _, _, _, v in history[: 8 * 288]]
    assert max(values) > 1.4 * min(values)


def test_unreachable_server_and_bad_query_are_findings_with_errors(
    tmp_path: Any, prometheus_factory: Callable[..., Prometheus]
) -> None:
    now = anchor_now()
    history = latency("lat", {}, now, seed=1, spike_at=now - timedelta(hours=2))
    server = prometheus_factory(history=openmetrics(history))
    down = f"http://127.0.0.1:{free_port()}"
    config = config_for(
        tmp_path,
        {"name": "broken", "url": server.url, "query": "rate(lat[5m]"},
        {"name": "down", "url": down, "query": "lat"},
        {"name": "lat", "url": server.url, "query": "lat"},
    )

    spike, broken, unreachable = metric_spikes(config, now=now, timeout=2)

    assert spike.metric == "lat" and spike.spike is not None and spike.error is None
    assert (broken.metric, broken.spike, broken.series) == ("broken", None, [])
    assert broken.error is not None and "HTTP 400: bad_data" in broken.error
    assert unreachable.describe() == (
        f"down: Prometheus at {down}: connection refused (is Prometheus running there?)"
    )
