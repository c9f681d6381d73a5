"""Spikes in the operator's own metrics, found by the same detector as mail volume.

Each `[[metrics]]` query is read from Prometheus (`prometheus.py`) and every series it
returns goes through `nlp.volume.detect_spikes` with `counts=False` (metric values are
not event counts). The result is one `MetricFinding` per spike, or one per metric that
could not be read, so a report can print metric trouble beside ticket clusters without
knowing anything about Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.config import Config, MetricConfig, parse_duration
from gateway.metrics.prometheus import DEFAULT_TIMEOUT, Point, query_range
from nlp.volume import Spike, detect_spikes


@dataclass(frozen=True)
class MetricFinding:
    """A spike in one series of a `[[metrics]]` query, or why the query gave nothing.

    `series` is the whole fetched history of that label set (for a sparkline); it is
    empty when `error` is set.
    """

    metric: str
    labels: dict[str, str]
    spike: Spike | None
    series: list[Point]
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.metric}: {self.error}"
        assert self.spike is not None
        return self.spike.describe()


def scope_of(metric: str, labels: dict[str, str]) -> str:
    """`name{label="value",...}`: how a series is named in a spike's description (the
    table's name stands for Prometheus's `__name__`)."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{metric}{{{inner}}}" if inner else metric


def spikes_in(
    metric: MetricConfig,
    *,
    now: datetime,
    lookback: timedelta | None = None,
    recent: timedelta | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[MetricFinding]:
    """Findings for one `[[metrics]]` table, with history from `now - lookback` to `now`
    (from the UTC midnight before `now - lookback`, to be exact)."""
    step = parse_duration(metric.step)
    history = lookback or parse_duration(metric.lookback)
    # From a UTC midnight: the detector learns each day's shape from whole days, and a
    # first day cut at 14:00 would leave its morning hours looking like zero.
    start = (now - history).replace(hour=0, minute=0, second=0, microsecond=0)
    result = query_range(metric.url, metric.query, start=start, end=now, step=step, timeout=timeout)
    if result.error is not None:
        return [MetricFinding(metric.name, {}, None, [], error=result.error)]
    found: list[MetricFinding] = []
    for series in result.series:
        try:
            spikes = detect_spikes(
                series.points,
                scope=scope_of(metric.name, series.labels),
                step=step,
                recent=recent,
                counts=False,
            )
        except ValueError as exc:  # a step the detector cannot bin by
            return [MetricFinding(metric.name, {}, None, [], error=str(exc))]
        found.extend(
            MetricFinding(metric.name, series.labels, spike, series.points) for spike in spikes
        )
    return found


def metric_spikes(
    config: Config,
    *,
    now: datetime,
    lookback: timedelta | None = None,
    recent: timedelta | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[MetricFinding]:
    """Spikes in every `[[metrics]]` query, strongest first, then every query's error.

    `lookback` replaces each table's own history window when given; `recent`, passed to
    the detector, keeps only spikes that reach into the last `recent` of the series.
    Never raises for an unreachable server or a bad query: those come back as findings
    whose `error` says what happened.
    """
    found: list[MetricFinding] = []
    for metric in config.metrics:
        found.extend(spikes_in(metric, now=now, lookback=lookback, recent=recent, timeout=timeout))
    found.sort(key=lambda f: (f.error is not None, -(f.spike.score if f.spike else 0.0)))
    return found
