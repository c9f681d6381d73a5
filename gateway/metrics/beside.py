"""Which metric spikes happened while tickets spiked: the pairing ops look for first.

A metric spike that overlaps a burst of tickets (a volume spike or a candidate or
declared incident) is likely the same event seen from the other side; one that does
not is shown apart, so a latency blip at night does not read as the cause of Friday's
outage. Overlap allows some slack: customers write a few minutes after graphs move.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from gateway.config import Config
from gateway.metrics.aberrations import MetricFinding, metric_spikes
from nlp.sparkline import spark_values

SLACK = timedelta(minutes=30)

Span = tuple[str, datetime, datetime]  # (what, start, end)


def pair(
    findings: Sequence[MetricFinding], spans: Sequence[Span], *, slack: timedelta = SLACK
) -> tuple[list[tuple[MetricFinding, list[str]]], list[MetricFinding]]:
    """(spikes overlapping some span, with the spans they overlap) and the rest (spikes
    alone, and errors)."""
    beside: list[tuple[MetricFinding, list[str]]] = []
    alone: list[MetricFinding] = []
    for finding in findings:
        spike = finding.spike
        hits = (
            [what for what, start, end in spans
             if spike.start <= end + slack and start - slack <= spike.end]
            if spike is not None else []
        )  # fmt: skip
        if hits:
            beside.append((finding, hits))
        else:
            alone.append(finding)
    return beside, alone


def sparkline_of(finding: MetricFinding, *, hours: int = 6) -> str:
    """The metric's values from a few hours before its spike to an hour after."""
    if finding.spike is None or not finding.series:
        return ""
    lo = finding.spike.start - timedelta(hours=hours)
    hi = finding.spike.end + timedelta(hours=1)
    return spark_values(v for t, v in finding.series if lo <= t <= hi)


def as_json(finding: MetricFinding, overlaps: Sequence[str] = ()) -> dict[str, Any]:
    spike = finding.spike
    return {
        "metric": finding.metric,
        "labels": finding.labels,
        "error": finding.error,
        "summary": finding.describe(),
        "start": spike.start.isoformat() if spike else None,
        "end": spike.end.isoformat() if spike else None,
        "score": round(spike.score, 2) if spike else None,
        "overlaps": list(overlaps),
        "sparkline": sparkline_of(finding),
    }


def beside_provider(
    config: Config, *, clock: Callable[[], datetime]
) -> Callable[[list[Span]], list[tuple[str, str]]] | None:
    """For the review UI: given incident spans, the metric spikes beside them as
    (description, sparkline); None when no `[[metrics]]` are configured."""
    if not config.metrics:
        return None

    def beside(spans: list[Span]) -> list[tuple[str, str]]:
        found = metric_spikes(config, now=clock(), recent=timedelta(hours=72))
        paired, _alone = pair(found, spans)
        return [
            (f"{f.describe()} — beside {', '.join(hits)}", sparkline_of(f)) for f, hits in paired
        ]

    return beside
